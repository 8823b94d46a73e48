#!/usr/bin/env bash
# Runs a broker on a fresh machine: installs the codec libraries if missing, builds, and starts
# `petrel broker` (127.0.0.1:9092, data in ./petrel-data unless --data says otherwise).
#
#   scripts/broker.sh [petrel broker options...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-build-deps.sh
swift build -c release --product petrel
exec .build/release/petrel broker "$@"
