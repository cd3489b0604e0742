#!/usr/bin/env bash
# Run uv with the source of torch's CPU build added to its arguments, e.g.
#   scripts/uv-with-torch.sh pip install --python .venv/bin/python -r requirements.lock
# requirements.lock pins torch==<version>+cpu, a build that is not on PyPI. It comes from a local
# wheel folder when that folder holds the pinned wheel, else from PyTorch's CPU index (as in
# docker/Dockerfile). Every other package comes from PyPI.
#   AIMPACT_WHEELS_DIR   local wheel folder (default /opt/wheels)
#   AIMPACT_TORCH_INDEX  PyTorch's CPU index (default https://download.pytorch.org/whl/cpu)
#   UV                   the uv binary (default: uv on PATH)
set -euo pipefail
lock="$(dirname "$0")/../requirements.lock"
wheels="${AIMPACT_WHEELS_DIR:-/opt/wheels}"
index="${AIMPACT_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
version="$(sed -n 's/^torch==//p' "$lock")"
if [ -z "$version" ]; then
  echo "no torch==<version> pin in $lock" >&2
  exit 2
fi
if compgen -G "$wheels/torch-$version-*.whl" >/dev/null; then
  echo "torch $version: from the local wheel folder $wheels" >&2
  source=(--find-links "$wheels")
else
  echo "torch $version: from $index (no torch-$version wheel in $wheels)" >&2
  source=(--extra-index-url "$index" --index-strategy unsafe-best-match)
fi
exec "${UV:-uv}" "$@" "${source[@]}"
