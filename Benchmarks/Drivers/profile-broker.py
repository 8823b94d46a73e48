#!/usr/bin/env python3
"""Where the broker spends its CPU: samples a release-build Petrel with `perf record -e cpu-clock`
(a software clock, so it works without hardware counters) while rdkafka_performance produces, then
consumes, 100 B records, and prints the hottest functions of each phase.

    Benchmarks/Drivers/profile-broker.py [--records 2000000]

Needs perf (Debian's linux-perf). Bounded: each phase is one load-generator run with a time limit.
"""
import argparse
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("bench_compare", os.path.join(HERE, "bench-compare.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def profile(pid, output, command, broker):
    recorder = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "2000", "-g", "-p", str(pid), "-o", output],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run = bench.Run(command, broker)
    finally:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(60)
    return run


def hottest(output, limit):
    report = subprocess.run(["perf", "report", "-i", output, "--no-children", "--sort", "dso,sym", "--stdio", "-g", "none"],
                            capture_output=True, text=True, timeout=300).stdout
    rows = [line for line in report.splitlines() if line.strip() and line.lstrip()[0].isdigit()]
    return "\n".join(rows[:limit])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    if not shutil.which("perf"):
        sys.exit("profile-broker: perf not found: apt-get install linux-perf")
    generator = bench.build_load_generator()
    workdir = tempfile.mkdtemp(prefix="petrel-profile-")
    broker = bench.start_petrel(workdir)
    try:
        bench.create_topic(broker.bootstrap, "profile")
        phases = (
            ("produce 100 B acks=1", [generator, "-P", "-t", "profile", "-p", "0", "-b", broker.bootstrap, "-s", "100", "-c",
                                      str(args.records), "-a", "1", "-X", "linger.ms=5", "-X", "log_level=3", "-q"]),
            ("consume 100 B", [generator, "-C", "-t", "profile", "-p", "0", "-b", broker.bootstrap, "-o", "beginning", "-c",
                               str(args.records), "-X", "log_level=3", "-q"]),
        )
        for name, command in phases:
            output = os.path.join(workdir, "perf.data")
            run = profile(broker.process.pid, output, command, broker)
            print(f"== {name}: broker {run.broker_cpu:.2f} CPU-s for {args.records:,} records over {run.wall:.2f} s")
            print(hottest(output, args.top), flush=True)
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
