#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the test dependencies, builds, runs the Swift
# unit and integration tests (a mutation fuzzer among them), a minute of libFuzzer on the request
# decoders, then the interop tests with real Kafka clients (kcat, confluent-kafka, kafka-python,
# aiokafka, sarama) against a broker process, TLS and SASL included, the client tests against tansu,
# the crash tests (kill -9 during produce, and while the log cleaner works), the many-partitions
# check, simulated power failures, the fault labs, the 1,000-connection soak, and smoke runs of the
# tansu comparisons (throughput, transactions, cost curves) and of the log cleaner benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-build-deps.sh
scripts/install-test-deps.sh  # the Python test harness (Tests/Harness) too, in editable mode
# The whole tree follows .swift-format (generated files opt out with swift-format-ignore-file).
swift format lint --strict --recursive --parallel Sources Tests examples Benchmarks
swift build
swift test
# Coverage-guided fuzzing of the request decoders (libFuzzer), bounded in time.
scripts/fuzz.sh 60
# The interop and fault tests drive the release build, the one scripts/broker.sh runs.
for product in petrel order-service notification-worker payment-worker order-status-service; do
  swift build -c release --product "$product"
done
export PETREL_BIN="$PWD/.build/release/petrel"
export PETREL="$PETREL_BIN"
# The client's integration tests once more, against an independent broker.
scripts/client-tests-against-tansu.sh
# Every interop test bounds its own waits; the outer limit catches a hung broker.
timeout 1200 python3 -m pytest -q Tests/Interop
# Fault scripts: bounded in cycles and time, loopback only.
timeout 600 python3 Tests/Crash/crash-test.py --cycles 20
timeout 600 python3 Tests/Crash/compaction-crash-test.py --cycles 20
# The same with tombstones that expire at once and a tiny key map (a cleaning of many passes): a
# deleted key must never come back with an older value.
timeout 600 python3 Tests/Crash/compaction-crash-test.py --cycles 8 --delete-retention-ms 0 --dedupe-buffer-size 1024
# Many partitions (2,000 here; 20,000 with --topics 2000, on demand) through a file cache kept smaller
# than their files, so segments are closed and reopened: RSS, descriptors, Metadata and scrape times,
# restart and kill -9 recovery against their targets, every record read back after each.
timeout 600 python3 Tests/Scale/partition-scale.py --topics 200 --broker-arg=--max-open-segment-files --broker-arg=1000
# Simulated power failures: the simulator's own tests, then the broker through 100 of them under
# --flush always (and 20 each under interval and never), with the data directory rolled back to what
# fsync made durable each time.
timeout 300 python3 -m pytest -q Tests/PowerLoss
timeout 1200 python3 Tests/PowerLoss/power-loss-test.py --cycles 100 --lossy-cycles 20
scripts/run-fault-labs.sh
# Load and soak: 1,000 connections, a reader that never reads, every acknowledged record audited.
timeout 300 python3 Tests/Load/soak.py
# The comparison script end to end, at small counts: checks the script, not the brokers.
timeout 600 python3 Benchmarks/Drivers/bench-compare.py --quick
# The same for the transactions benchmark (transactional against idempotent produce, commit latency).
timeout 300 python3 Benchmarks/Drivers/bench-transactions.py --quick
# The log cleaner under produce load, at small counts: checks that the script runs and that the
# cleaner cleans (in passes, too, within a small key map), not the produce-rate target.
timeout 300 python3 Benchmarks/Drivers/bench-cleaner.py --quick
# The cost-curve script (partitions, topics, producer connections, against tansu) at small counts:
# checks that every series runs and plots (about 20 s), not the curves.
timeout 120 python3 Benchmarks/Drivers/bench-scale.py --quick
echo "all tests passed"
