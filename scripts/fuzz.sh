#!/usr/bin/env bash
# Coverage-guided fuzzing of the request decoders with libFuzzer (swiftc -sanitize=fuzzer), for a
# bounded time. Builds Tests/Fuzz into .build-fuzz, seeds the corpus with the requests captured from
# real clients, and fails on any crash, trap, leak of the time or memory limits, or single allocation
# over 64 MB (a length or count trusted before it was checked).
#
#   scripts/fuzz.sh [SECONDS]     (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
root="$PWD"
scratch="$root/.build-fuzz"

mkdir -p "$scratch"
(cd Tests/Fuzz && swift build -c release --scratch-path "$scratch" --product FuzzRequests \
  -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library) >"$scratch/fuzz-build.log" 2>&1 || {
  tail -40 "$scratch/fuzz-build.log" >&2
  echo "fuzz: the fuzz target did not build (log: $scratch/fuzz-build.log)" >&2
  exit 1
}
binary="$(cd Tests/Fuzz && swift build -c release --scratch-path "$scratch" --show-bin-path)/FuzzRequests"

corpus="$(mktemp -d -t petrel-fuzz-corpus-XXXXXX)"
findings="$(mktemp -d -t petrel-fuzz-findings-XXXXXX)"
trap 'rm -rf "$corpus"' EXIT
for seed in Tests/PetrelProtocolTests/Fixtures/*/*.bin; do
  cp "$seed" "$corpus/$(basename "$(dirname "$seed")")-$(basename "$seed")"
done
seeds=$(ls "$corpus" | wc -l)

echo "fuzz: libFuzzer on the request decoders for ${seconds}s, ${seeds} captured requests as seeds"
set +e
"$binary" "$corpus" -max_total_time="$seconds" -rss_limit_mb=1024 -malloc_limit_mb=64 -timeout=10 \
  -artifact_prefix="$findings/" -print_final_stats=1 >"$findings/fuzz.log" 2>&1
status=$?
set -e
grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+.*DONE' "$findings/fuzz.log" | sed 's/^/fuzz: /'
if [ $status -ne 0 ]; then
  tail -60 "$findings/fuzz.log" >&2
  echo "fuzz: libFuzzer found a failing input (exit $status); it is in $findings" >&2
  exit 1
fi
echo "fuzz: no crash, trap or oversized allocation; corpus grew to $(ls "$corpus" | wc -l) inputs"
rm -rf "$findings"
