#!/usr/bin/env bash
# Build librdkafka's C load generator `rdkafka_performance` for benchmarking.
#
# Source: Debian librdkafka-dev's examples/rdkafka_performance.c, compiled
# against the installed <librdkafka/rdkafka.h> plus a tiny shim for the
# private headers it includes (Benchmarks/Drivers/rdkafka_shim/src), and linked
# against the (newer) librdkafka bundled in the confluent-kafka Python wheel,
# with an rpath so it runs without LD_LIBRARY_PATH.
#
# Usage: Benchmarks/Drivers/build-rdkafka-performance.sh [OUTPUT]
#   OUTPUT defaults to <repo>/.build-bench/rdkafka_performance
#   Env: PYTHON (default python3), CC (default gcc),
#        RDKAFKA_PERF_SRC (default Debian example path).
# Prints the absolute path of the binary on stdout. Rebuilds only when the
# binary is older than the source, shim headers, wheel library or this script.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/../.." && pwd)"
shim_dir="$script_dir/rdkafka_shim/src"
src="${RDKAFKA_PERF_SRC:-/usr/share/doc/librdkafka-dev/examples/rdkafka_performance.c}"
header_dir="/usr/include/librdkafka"
out="${1:-$repo_root/.build-bench/rdkafka_performance}"
PYTHON="${PYTHON:-python3}"
CC="${CC:-gcc}"

die() { echo "build-rdkafka-performance: $*" >&2; exit 1; }

[[ -f "$src" ]] || die "example source $src is missing (install librdkafka-dev: apt-get install librdkafka-dev)."
[[ -f "$header_dir/rdkafka.h" ]] || die "header $header_dir/rdkafka.h is missing (install librdkafka-dev)."
[[ -f "$shim_dir/rd.h" && -f "$shim_dir/rdtime.h" ]] || die "shim headers are missing from $shim_dir."
command -v "$CC" >/dev/null || die "C compiler '$CC' not found."

# Locate the librdkafka shipped inside the confluent-kafka wheel
# (auditwheel puts it in site-packages/confluent_kafka.libs/librdkafka-<hash>.so.1).
lib="$("$PYTHON" - <<'PY' 2>/dev/null || true
import glob, os
import confluent_kafka
pkg = os.path.dirname(confluent_kafka.__file__)
pats = [os.path.join(os.path.dirname(pkg), "confluent_kafka.libs", "librdkafka*.so*"),
        os.path.join(pkg, ".libs", "librdkafka*.so*"),
        os.path.join(pkg, "librdkafka*.so*")]
hits = sorted(h for p in pats for h in glob.glob(p))
print(os.path.realpath(hits[0]) if hits else "")
PY
)"
[[ -n "$lib" && -f "$lib" ]] || die "could not find the confluent-kafka wheel's bundled librdkafka*.so with $PYTHON (pip install confluent-kafka)."
lib_dir="$(dirname "$lib")"

mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"

up_to_date=1
if [[ -x "$out" ]]; then
    for dep in "$src" "$shim_dir/rd.h" "$shim_dir/rdtime.h" "$lib" "${BASH_SOURCE[0]}"; do
        [[ "$out" -nt "$dep" ]] || { up_to_date=0; break; }
    done
else
    up_to_date=0
fi

if [[ $up_to_date -eq 0 ]]; then
    tmp="$out.tmp.$$"
    trap 'rm -f "$tmp"' EXIT
    # -I"$shim_dir": "../src/rd.h", "rd.h" and "rdtime.h" all resolve to the shim.
    # Linking the .so by path records its SONAME (librdkafka-<hash>.so.1) as NEEDED.
    "$CC" -O2 -Wall -o "$tmp" \
        -I"$shim_dir" -I"$header_dir" \
        "$src" \
        "$lib" -Wl,--disable-new-dtags,-rpath,"$lib_dir" -lpthread
    # Sanity check: the dynamic loader must pick the wheel's library. ldd's output is taken whole first:
    # `ldd | grep -q` under pipefail fails at random when grep exits early and ldd gets SIGPIPE.
    resolved="$(ldd "$tmp")"
    grep -qF "$lib_dir/" <<<"$resolved" \
        || die "built binary does not resolve librdkafka from $lib_dir (ldd says: $resolved)."
    mv -f "$tmp" "$out"
    trap - EXIT
    echo "build-rdkafka-performance: built $out against $lib" >&2
fi

echo "$out"
