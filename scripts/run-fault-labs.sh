#!/usr/bin/env bash
# Runs every fault lab in examples/faults and checks its verdict line (not just its exit status).
set -uo pipefail
cd "$(dirname "$0")/.."
failed=0
for lab in duplicate-delivery consumer-lag ordering broker-crash poison-record hung-transaction rebalance-storm; do
  echo "== $lab"
  output=$(timeout 300 "examples/faults/$lab.py" 2>&1)
  status=$?
  echo "$output" | grep -v '^building the release binaries' | sed 's/^/   /'
  verdict=$(echo "$output" | grep '^VERDICT:' | tail -1)
  if [ $status -ne 0 ] || [[ "$verdict" != "VERDICT: PASS"* ]]; then
    echo "   -> $lab did not pass (exit $status)"
    failed=1
  fi
done
exit $failed
