#!/usr/bin/env bash
# The dashboard's figures (bench/dashboard.py): JavaScript of the first pages and the runs list's time to
# interactive with 10,000 runs, next to the same page's API call. One benchmark at a time on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
exec flock /tmp/bench.lock .venv/bin/python -m bench.dashboard "$@"
