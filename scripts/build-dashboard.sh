#!/usr/bin/env bash
# Build the dashboard's static export (dashboard/out, served by the API at /) when it is missing or
# older than its sources; `npm ci` first when node_modules does not match package-lock.json.
# Needs node 20 and npm 11 (dashboard/.nvmrc, package.json "engines"). Without npm it says so and
# exits 0, unless AIMPACT_DASHBOARD_REQUIRED=1 (the browser tests), where it fails.
set -euo pipefail
cd "$(dirname "$0")/../dashboard"
export NEXT_TELEMETRY_DISABLED=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

if ! command -v npm >/dev/null 2>&1; then
  echo "dashboard: npm not found; install node $(cat .nvmrc) with npm 11 to build it (the API runs without it)" >&2
  [ "${AIMPACT_DASHBOARD_REQUIRED:-0}" = 1 ] && exit 1
  exit 0
fi

exec 9>.build.lock
flock 9  # one build at a time (make up and a test run may race)

lock_hash=$(sha256sum package-lock.json | cut -c1-64)
if [ ! -f node_modules/.ci-stamp ] || [ "$(cat node_modules/.ci-stamp)" != "$lock_hash" ]; then
  echo "== dashboard: npm ci (package-lock.json changed or node_modules missing)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.ci-stamp
fi

sources=()  # the inputs of the build that exist (git keeps no empty folder such as public/)
for path in src public package.json package-lock.json next.config.ts tsconfig.json; do
  [ -e "$path" ] && sources+=("$path")
done
source_hash=$(find "${sources[@]}" -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64)
if [ -f out/index.html ] && [ -f .build-stamp ] && [ "$(cat .build-stamp)" = "$source_hash" ]; then
  echo "dashboard: up to date (dashboard/out)"
  exit 0
fi
echo "== dashboard: next build (static export into dashboard/out)"
rm -f .build-stamp
npx --no-install next build
# gzip copies of the hashed assets: the API sends them to browsers that accept gzip (no compression per request)
find out/_next/static -type f \( -name '*.js' -o -name '*.css' \) -exec gzip -9 -k -n -f {} +
echo "$source_hash" > .build-stamp
