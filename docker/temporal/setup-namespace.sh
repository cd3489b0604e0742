#!/bin/sh
# One-shot (temporalio/admin-tools): the namespace and the Keyword search attributes
# AImPact writes and queries by (SEARCH_ATTRIBUTES, the names in core/ids.py). Idempotent.
set -eu
ADDRESS="${TEMPORAL_ADDRESS:-temporal:7233}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
RETENTION="${TEMPORAL_RETENTION:-72h}"
: "${SEARCH_ATTRIBUTES:?space-separated Keyword search attributes}"

echo "waiting for Temporal at ${ADDRESS}"
until temporal operator cluster health --address "${ADDRESS}" | grep -q SERVING; do sleep 2; done

temporal operator namespace describe --address "${ADDRESS}" -n "${NAMESPACE}" >/dev/null 2>&1 \
  || temporal operator namespace create --address "${ADDRESS}" -n "${NAMESPACE}" --retention "${RETENTION}"

# A new namespace becomes usable once the frontend's namespace cache refreshes (~10 s).
tries=0
until existing="$(temporal operator search-attribute list --address "${ADDRESS}" -n "${NAMESPACE}" 2>/dev/null)"; do
  tries=$((tries + 1))
  if [ "${tries}" -ge 60 ]; then
    echo "namespace ${NAMESPACE} not usable after 60 s" >&2
    exit 1
  fi
  sleep 1
done
for name in ${SEARCH_ATTRIBUTES}; do
  if echo "${existing}" | grep -qw "${name}"; then
    echo "search attribute ${name} exists"
  else
    temporal operator search-attribute create --address "${ADDRESS}" -n "${NAMESPACE}" --name "${name}" --type Keyword
  fi
done
echo "namespace ${NAMESPACE} is ready"
