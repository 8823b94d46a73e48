#!/usr/bin/env bash
# Installs the C libraries Petrel links against, if missing (Debian/Ubuntu): zlib, snappy, lz4 and zstd,
# the record batch codecs. Safe to run again.
set -euo pipefail

missing=()
for package in zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
