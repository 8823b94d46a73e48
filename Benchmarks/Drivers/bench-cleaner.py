#!/usr/bin/env python3
"""The log cleaner under load: produce throughput to one topic while the cleaner compacts another.

Starts a release-build Petrel on free loopback ports (with its metrics endpoint on, the cleaner
checking every 200 ms) and, per cycle:

  1. fills a compacted topic with keyed updates (confluent-kafka, random keys, most of them updated
     several times) in small segments, min.cleanable.dirty.ratio 0.01; min.compaction.lag.ms is
     ten years meanwhile, so the cleaner leaves it alone;
  2. measures produce throughput to another topic (rdkafka_performance, as bench-compare.py drives
     it) with the cleaner idle;
  3. sets min.compaction.lag.ms to 0 (IncrementalAlterConfigs): the cleaner starts on the topic;
  4. measures the same produce run again while the cleaner works, then waits for the cleaning to end.

Cycles alternate which of the two runs comes first, so that a drift in the machine's speed weighs on
both. From the broker's /metrics (petrel_log_cleaner_*) it takes each cleaning's duration and end,
and so how much of the produce run it covered; the dirty bytes are the compacted partition's closed
segments before the cleaning. For every run it records the CPU of the broker, of the generator and of
all other processes (from /proc): on a shared machine the last one says which cycles to trust. Then one more fill is cleaned with no produce load (the cleaner's speed
alone), and a second broker with --log-cleaner-dedupe-buffer-size 4 MiB cleans a log of more keys
than that map holds: the passes, and the broker's resident memory growth during the cleaning (sampled
from /proc every 20 ms) next to the map's size.

Reports, per record size, the median of each cycle's ratio (produce rate while cleaning / rate with
the cleaner idle) against the 0.8 target, and the cleaner's MB/s (10^6 bytes of dirty log a second).
--quick runs one small cycle per record size: it checks that the script works and that the cleaner
cleaned, not the target. --cleaner-nice N is an experiment: it gives the thread doing the cleaning
nice N while it cleans alongside a produce run. Everything binds 127.0.0.1, has a time limit, and
stops by pid what it started.

    Benchmarks/Drivers/bench-cleaner.py [--quick] [--repeat 5] [--sizes 100,1024] [--cleaner-nice N]
                                        [--markdown FILE]
"""
import argparse
import importlib.util
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from petrel_harness.broker_process import free_port, petrel_command

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("bench_compare", os.path.join(HERE, "bench-compare.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

TEN_YEARS_MS = 10 * 365 * 86_400_000
BACKOFF_MS = 200
TARGET = 0.8
QUIET_CORES = 0.15  # other processes' CPU below which a cycle counts as undisturbed
MAP_SLOT_BYTES = 24  # KeyOffsetMap.bytesPerSlot
CLEANED = re.compile(r"cleaned a compacted partition")
LOG_FIELD = re.compile(r"(\w+)=(\S+)")


class Settings:
    def __init__(self, quick):
        if quick:
            self.records, self.keys, self.segment_bytes = 60_000, 10_000, 1 << 20
            self.load = {100: 100_000, 1024: 30_000}
            self.repeat = 1
            self.memory_records = 300_000
        else:
            # ~1.1 GB of dirty log: the cleaner works longer than a produce run lasts alongside it.
            self.records, self.keys, self.segment_bytes = 4_000_000, 600_000, 8 << 20
            # About 2-4 s each with the cleaner idle.
            self.load = {100: 6_000_000, 1024: 1_500_000}
            self.repeat = 5
            self.memory_records = 1_000_000
        self.value_bytes = 256
        self.cleaner_nice = None
        self.memory_value_bytes = 64
        self.memory_map_bytes = 4 << 20


def start_broker(workdir, name, *extra):
    binary = os.environ.get("PETREL_BIN", os.path.join(bench.ROOT, ".build", "release", "petrel"))
    if not os.access(binary, os.X_OK):
        subprocess.run(["swift", "build", "-c", "release", "--product", "petrel"], cwd=bench.ROOT, check=True, timeout=1200)
    port, metrics_port = free_port(), free_port()
    command = petrel_command(binary, os.path.join(workdir, f"{name}-data"), port, "--metrics", f"127.0.0.1:{metrics_port}",
                             "--log-level", "info", "--log-cleaner-backoff-ms", str(BACKOFF_MS), *extra)
    broker = bench.Broker(name, command, port, workdir)
    broker.metrics_port = metrics_port
    broker.data = os.path.join(workdir, f"{name}-data")
    return broker


def stop(broker):
    """Drops the broker's admin client first, so that it does not go on trying to reconnect."""
    broker.admin = None
    broker.stop()


LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy


def metrics(broker):
    """The broker's petrel_log_cleaner_* series, by name (no labels)."""
    with LOOPBACK.open(f"http://127.0.0.1:{broker.metrics_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = {}
    for line in text.splitlines():
        if line.startswith("petrel_log_cleaner_") and "{" not in line:
            name, value = line.split()
            found[name] = float(value)
    return found


def admin(broker):
    """One admin client per broker, kept: a client dropped while a request is under way fails it."""
    if getattr(broker, "admin", None) is None:
        from confluent_kafka.admin import AdminClient
        broker.admin = AdminClient({"bootstrap.servers": broker.bootstrap, "log_level": 3})
    return broker.admin


def create_compacted_topic(broker, name, segment_bytes):
    from confluent_kafka.admin import NewTopic
    config = {"cleanup.policy": "compact", "segment.bytes": str(segment_bytes), "min.cleanable.dirty.ratio": "0.01",
              "min.compaction.lag.ms": str(TEN_YEARS_MS)}
    admin(broker).create_topics([NewTopic(name, num_partitions=1, replication_factor=1, config=config)])[name].result(30)


def release_for_cleaning(broker, name):
    """min.compaction.lag.ms to 0: every closed segment of the topic becomes cleanable."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
    resource = ConfigResource("topic", name, incremental_configs=[
        ConfigEntry("min.compaction.lag.ms", "0", incremental_operation=AlterConfigOpType.SET)])
    admin(broker).incremental_alter_configs([resource])[resource].result(30)


def delete_topic(broker, name):
    admin(broker).delete_topics([name])[name].result(30)


def fill(broker, topic, records, keys, value_bytes, seed, deadline=300):
    """`records` keyed updates over `keys` keys drawn at random: the dirty log the cleaner compacts.
    Returns how many distinct keys were written."""
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 50, "batch.size": 1_000_000,
                         "queue.buffering.max.messages": 1_000_000, "acks": "1", "log_level": 3})
    value = b"v" * value_bytes
    draw = random.Random(seed).randrange
    stop_at = time.monotonic() + deadline
    written = set()
    for index in range(records):
        key = draw(keys)
        written.add(key)
        while True:
            try:
                producer.produce(topic, value, b"user-%d" % key)
                break
            except BufferError:
                producer.poll(0.01)
        if index % 10_000 == 0:
            producer.poll(0)
            if time.monotonic() > stop_at:
                raise RuntimeError(f"filling {topic} took longer than {deadline} s")
    if producer.flush(60) != 0:
        raise RuntimeError(f"filling {topic}: records still undelivered after 60 s")
    return len(written)


def dirty_bytes(broker, topic):
    """Bytes of the partition's closed segments: what a first cleaning compacts (the active segment
    is never cleaned)."""
    folder = os.path.join(broker.data, f"{topic}-0")
    logs = sorted(name for name in os.listdir(folder) if name.endswith(".log"))
    return sum(os.path.getsize(os.path.join(folder, name)) for name in logs[:-1])


def resident_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class ResidentSampler:
    """The broker's peak resident memory (VmRSS) while running, sampled every 20 ms."""

    def __init__(self, pid):
        self.pid = pid
        self.baseline = resident_kib(pid)
        self.peak = self.baseline
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self):
        while not self.done.wait(0.02):
            self.peak = max(self.peak, resident_kib(self.pid))

    def stop(self):
        self.done.set()
        self.thread.join(5)
        return (self.peak - self.baseline) * 1024


def thread_cpu(pid):
    """CPU ticks so far of each of the process's threads but the network event loops (NIO-*)."""
    ticks = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if f.read().startswith("NIO-"):
                    continue
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks[int(tid)] = int(fields[11]) + int(fields[12])
        except OSError:
            pass  # the thread ended
    return ticks


class Cleaning:
    """One cleaning the cleaner started on its own after `release_for_cleaning`, followed through the
    metrics endpoint and the broker's log: when it ran, how long, how much, in how many passes.

    With `nice`, the thread doing the cleaning (the busiest one but the event loops, while nothing else
    runs) gets that nice value until the cleaning ends: an experiment in running the cleaner at a lower
    CPU priority than the event loops, from outside the broker."""

    def __init__(self, broker, topic, nice=None):
        self.broker = broker
        self.topic = topic
        self.before = metrics(broker)
        self.log_length = len(broker.log())
        self.dirty = dirty_bytes(broker, topic)
        self.sampler = ResidentSampler(broker.process.pid)
        self.niced = None
        release_for_cleaning(broker, topic)
        time.sleep(BACKOFF_MS / 1000)  # the cleaner looks at the logs every BACKOFF_MS
        before = thread_cpu(broker.process.pid)
        time.sleep(BACKOFF_MS / 1000)
        if nice is not None:
            after = thread_cpu(broker.process.pid)
            busiest = max(after, key=lambda tid: after[tid] - before.get(tid, 0), default=None)
            if busiest is not None and after[busiest] > before.get(busiest, 0):
                os.setpriority(os.PRIO_PROCESS, busiest, nice)
                self.niced = busiest
                self.niced_ticks = after[busiest]

    def wait(self, timeout=600):
        deadline = time.monotonic() + timeout
        while True:
            now = metrics(self.broker)
            if now.get("petrel_log_cleaner_runs_total", 0) > self.before.get("petrel_log_cleaner_runs_total", 0):
                break
            if now.get("petrel_log_cleaner_failures_total", 0) > self.before.get("petrel_log_cleaner_failures_total", 0):
                raise RuntimeError(f"the cleaning of {self.topic} failed:\n{self.broker.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cleaning of {self.topic} did not end within {timeout} s")
            time.sleep(0.05)
        self.rss_growth = self.sampler.stop()
        if self.niced is not None:
            # How much of the cleaning ran on the thread given the nice value (it must be most of it).
            ticks = thread_cpu(self.broker.process.pid).get(self.niced, self.niced_ticks) - self.niced_ticks
            self.niced_cpu = ticks / os.sysconf("SC_CLK_TCK")
            try:
                os.setpriority(os.PRIO_PROCESS, self.niced, 0)  # a pooled thread: back to normal
            except OSError:
                pass
        delta = {name: now.get(name, 0) - self.before.get(name, 0) for name in now}
        if delta["petrel_log_cleaner_runs_total"] != 1:
            raise RuntimeError(f"expected one cleaning, the metrics count {delta['petrel_log_cleaner_runs_total']:g}")
        self.duration = delta["petrel_log_cleaner_duration_seconds_sum"]
        self.ended = now["petrel_log_cleaner_last_clean_time_seconds"]
        self.started = self.ended - self.duration
        self.read = delta["petrel_log_cleaner_read_bytes_total"]
        self.written = delta["petrel_log_cleaner_written_bytes_total"]
        self.removed = delta["petrel_log_cleaner_removed_records_total"]
        lines = [line for line in self.broker.log()[self.log_length:].splitlines() if CLEANED.search(line)]
        fields = dict(LOG_FIELD.findall(lines[-1])) if lines else {}
        self.passes = int(fields.get("passes", 0))
        return self

    @property
    def mb_per_s(self):
        return self.dirty / 1e6 / self.duration if self.duration > 0 else 0.0

    def coverage(self, start, end):
        """The share of [start, end] (wall clock) during which the cleaning ran."""
        overlap = min(end, self.ended) - max(start, self.started)
        return max(0.0, overlap) / (end - start) if end > start else 0.0


class OtherLoad:
    """What the rest of the machine did during a run: CPU used by processes other than the broker, the
    load generator and this script (in cores), and the share of time the host took from this virtual
    machine (`steal` in /proc/stat). Either one takes CPU from the run."""

    def __init__(self):
        self.start = self._read()
        self.own = self._own()

    @staticmethod
    def _read():
        with open("/proc/stat") as f:
            fields = [int(n) for n in f.readline().split()[1:9]]
        idle, steal = fields[3] + fields[4], fields[7]
        return sum(fields) - idle - steal, steal, sum(fields)

    @staticmethod
    def _own():
        times = os.times()
        return times.user + times.system

    def stop(self, run):
        (busy0, steal0, total0), (busy1, steal1, total1) = self.start, self._read()
        ticks = os.sysconf("SC_CLK_TCK")
        busy = (busy1 - busy0) / ticks - run.broker_cpu - run.generator_cpu - (self._own() - self.own)
        self.cores = max(0.0, busy) / run.wall
        self.steal = (steal1 - steal0) / max(1, total1 - total0)
        return self


def produce_run(generator, broker, topic, size, count):
    """One rdkafka_performance run into a fresh topic: (records/s, the Run, wall-clock start and end,
    the rest of the machine's load meanwhile)."""
    bench.create_topic(broker.bootstrap, topic)
    os.sync()  # the fill's and earlier runs' writes are flushed now, not during the measurement
    started = time.time()
    other = OtherLoad()
    run = bench.Run(bench.produce_command(generator, broker.bootstrap, topic, size, count, "1"), broker, timeout=300)
    other.stop(run)
    ended = time.time()
    rate = run.rate(bench.PRODUCED, 4)
    delete_topic(broker, topic)
    return rate, run, started, ended, other


def map_bytes(offsets, budget):
    """The key map a cleaning of `offsets` offsets takes within `budget` (KeyOffsetMap.bytesNeeded)."""
    capacity = 1
    while capacity * 0.9 < offsets + 1 and capacity * 2 * MAP_SLOT_BYTES <= budget:
        capacity *= 2
    return capacity * MAP_SLOT_BYTES


def cycle(generator, broker, settings, size, attempt):
    """Fill, then produce with the cleaner idle and while it cleans (in alternating order)."""
    topic = f"compacted-{size}-{attempt}"
    create_compacted_topic(broker, topic, settings.segment_bytes)
    fill(broker, topic, settings.records, settings.keys, settings.value_bytes, seed=attempt)
    count = settings.load[size]
    result = {}

    def idle():
        result["idle"] = produce_run(generator, broker, f"load-idle-{size}-{attempt}", size, count)

    def cleaning():
        started = Cleaning(broker, topic, nice=settings.cleaner_nice)
        result["cleaning"] = produce_run(generator, broker, f"load-cleaning-{size}-{attempt}", size, count)
        result["cleaner"] = started.wait()

    for phase in (idle, cleaning) if attempt % 2 == 0 else (cleaning, idle):
        phase()
    delete_topic(broker, topic)
    idle_rate, idle_run, _, _, idle_other = result["idle"]
    rate, run, started, ended, other = result["cleaning"]
    cleaner = result["cleaner"]
    row = {"idle": idle_rate, "cleaning": rate, "ratio": rate / idle_rate, "cleaner": cleaner,
           "coverage": cleaner.coverage(started, ended), "idle_cpu": idle_run.broker_cpu / idle_run.wall,
           "cleaning_cpu": run.broker_cpu / run.wall, "generator_idle": idle_run.generator_cpu / idle_run.wall,
           "generator_cleaning": run.generator_cpu / run.wall, "other_idle": idle_other.cores,
           "other_cleaning": other.cores, "steal": max(idle_other.steal, other.steal)}
    if cleaner.niced is not None:
        print(f"  (the thread given nice {settings.cleaner_nice} used {cleaner.niced_cpu:.2f} CPU-s during the "
              f"{cleaner.duration:.2f} s cleaning)")
    print(f"  {size} B, cycle {attempt + 1}: idle {idle_rate:,} records/s, while cleaning {rate:,} records/s "
          f"(ratio {row['ratio']:.2f}, the cleaning covered {row['coverage']:.0%} of the run); cleaner "
          f"{cleaner.dirty / 1e6:.0f} MB dirty in {cleaner.duration:.2f} s = {cleaner.mb_per_s:.0f} MB/s, "
          f"{cleaner.passes} pass(es); broker {row['idle_cpu']:.2f} → {row['cleaning_cpu']:.2f} cores, "
          f"generator {row['generator_idle']:.2f} → {row['generator_cleaning']:.2f} cores, other processes "
          f"{row['other_idle']:.2f} → {row['other_cleaning']:.2f} cores, host steal up to {row['steal']:.0%}", flush=True)
    return row


def clean_alone(broker, settings, records, keys, value_bytes, name):
    """A fill cleaned with no other load: the cleaner's own speed, passes and memory."""
    create_compacted_topic(broker, name, settings.segment_bytes)
    distinct = fill(broker, name, records, keys, value_bytes, seed=12345)
    os.sync()
    cleaning = Cleaning(broker, name).wait()
    cleaning.keys = distinct
    delete_topic(broker, name)
    return cleaning


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small cycle per record size: checks the script, not the target")
    parser.add_argument("--repeat", type=int, help="cycles per record size (default 5; 1 with --quick)")
    parser.add_argument("--sizes", default="100,1024", help="record sizes of the produce load, bytes (100 and/or 1024)")
    parser.add_argument("--cleaner-nice", type=int, help="experiment: give the cleaner's thread this nice value "
                        "(e.g. 10) while it cleans alongside the produce run")
    parser.add_argument("--cleaner-max-bytes-per-second", type=int, default=0,
                        help="the broker's --log-cleaner-io-max-bytes-per-second for the produce cycles (0: no limit)")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    settings = Settings(args.quick)
    if args.repeat:
        settings.repeat = args.repeat
    settings.cleaner_nice = args.cleaner_nice
    sizes = [int(size) for size in args.sizes.split(",")]
    if any(size not in settings.load for size in sizes):
        sys.exit(f"bench-cleaner: --sizes takes {', '.join(map(str, settings.load))}")

    generator = bench.build_load_generator()
    workdir = tempfile.mkdtemp(prefix="petrel-bench-cleaner-")
    brokers = []
    try:
        print(f"{os.cpu_count()} cores shared by the broker (cleaner thread included), the load generator and this "
              f"script; {settings.repeat} cycle(s) per record size; each fill: {settings.records:,} updates of "
              f"{settings.value_bytes} B values over {settings.keys:,} keys in {settings.segment_bytes >> 20} MiB segments"
              + (f"; the cleaner's thread at nice {settings.cleaner_nice} while it cleans alongside a produce run"
                 if settings.cleaner_nice is not None else ""), flush=True)
        limit = (["--log-cleaner-io-max-bytes-per-second", str(args.cleaner_max_bytes_per_second)]
                 if args.cleaner_max_bytes_per_second else [])
        if limit:
            print(f"the cleaner limited to {args.cleaner_max_bytes_per_second / 1e6:.0f} MB/s a thread", flush=True)
        broker = start_broker(workdir, "petrel", *limit)
        brokers.append(broker)
        rows = {size: [] for size in sizes}
        for attempt in range(settings.repeat):
            for size in sizes if attempt % 2 == 0 else reversed(sizes):
                rows[size].append(cycle(generator, broker, settings, size, attempt))
        alone = clean_alone(broker, settings, settings.records, settings.keys, settings.value_bytes, "compacted-alone")
        print(f"  cleaner alone: {alone.dirty / 1e6:.0f} MB dirty in {alone.duration:.2f} s = {alone.mb_per_s:.0f} MB/s, "
              f"{alone.removed:,.0f} records removed, broker RSS +{alone.rss_growth / 2**20:.0f} MiB "
              f"(key map {map_bytes(settings.records, 128 << 20) / 2**20:.0f} MiB)", flush=True)
        stop(broker)

        small = start_broker(workdir, "petrel-small-map", "--log-cleaner-dedupe-buffer-size", str(settings.memory_map_bytes))
        brokers.append(small)
        # Keys drawn from twice as many as there are records: ~80% of the records have a key of their own.
        memory = clean_alone(small, settings, settings.memory_records, 2 * settings.memory_records, settings.memory_value_bytes,
                             "compacted-many-keys")
        small_map = map_bytes(settings.memory_records, settings.memory_map_bytes)
        print(f"  more keys than the map holds: {settings.memory_records:,} updates of {memory.keys:,} keys, "
              f"--log-cleaner-dedupe-buffer-size {settings.memory_map_bytes >> 20} MiB (a map of {small_map >> 10} KiB, "
              f"{int(small_map // MAP_SLOT_BYTES * 0.9):,} keys a pass): {memory.passes} passes, broker RSS "
              f"+{memory.rss_growth / 2**20:.1f} MiB, {memory.mb_per_s:.0f} MB/s", flush=True)
        stop(small)
    finally:
        for broker in brokers:
            stop(broker)
        shutil.rmtree(workdir, ignore_errors=True)

    problems = check(rows, alone, memory, settings, args.quick)
    text = render(rows, alone, memory, settings, small_map, args.quick)
    print()
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    if problems:
        sys.exit("bench-cleaner: " + "; ".join(problems))


def check(rows, alone, memory, settings, quick):
    """What must hold in any mode: every cleaning cleaned. Full mode also flags runs the cleaning did not
    cover (their ratio would flatter the cleaner)."""
    problems = []
    cleanings = [row["cleaner"] for size_rows in rows.values() for row in size_rows] + [alone, memory]
    for cleaning in cleanings:
        if cleaning.removed <= 0 or cleaning.read <= 0 or cleaning.written >= cleaning.read or cleaning.passes < 1:
            problems.append(f"the cleaning of {cleaning.topic} removed nothing")
    if memory.passes < 2:
        problems.append(f"the log with more keys than the map was cleaned in {memory.passes} pass(es)")
    if not quick:
        for size, size_rows in rows.items():
            for attempt, row in enumerate(size_rows):
                if row["coverage"] < 0.95:
                    print(f"warning: {size} B cycle {attempt + 1}: the cleaning covered only {row['coverage']:.0%} of "
                          f"the produce run; its ratio overstates the rate while cleaning")
    return problems


def render(rows, alone, memory, settings, small_map, quick):
    out = ["| Measure | " + " | ".join(f"{size} B records" for size in rows) + " |",
           "|---|" + "---:|" * len(rows)]

    def line(name, cell):
        out.append(f"| {name} | " + " | ".join(cell(size_rows) for size_rows in rows.values()) + " |")

    def median(size_rows, key):
        return statistics.median(key(row) for row in size_rows)

    line("produce, cleaner idle, records/s", lambda r: f"{median(r, lambda x: x['idle']):,.0f}")
    line("produce while the cleaner cleans, records/s", lambda r: f"{median(r, lambda x: x['cleaning']):,.0f}")
    line(f"ratio, median of {settings.repeat} cycle(s) (target ≥ {TARGET})",
         lambda r: f"**{median(r, lambda x: x['ratio']):.2f}** (" + ", ".join(f"{x['ratio']:.2f}" for x in r) + ")")
    def quiet_ratio(r):
        calm = [x["ratio"] for x in r if max(x["other_idle"], x["other_cleaning"]) < QUIET_CORES]
        return f"{statistics.median(calm):.2f} ({len(calm)} of {len(r)})" if calm else f"none of {len(r)}"

    line(f"ratio, cycles in which other processes used < {QUIET_CORES} cores in both runs", quiet_ratio)
    line("target met", lambda r: "n/a (--quick)" if quick else "yes" if median(r, lambda x: x["ratio"]) >= TARGET else "no")
    line("share of the produce run the cleaning covered", lambda r: f"{min(x['coverage'] for x in r):.0%} or more")
    line("cleaner while producing, MB/s of dirty log", lambda r: f"{median(r, lambda x: x['cleaner'].mb_per_s):.0f}")
    line("broker CPU, cleaner idle → cleaning, cores",
         lambda r: f"{median(r, lambda x: x['idle_cpu']):.2f} → {median(r, lambda x: x['cleaning_cpu']):.2f}")
    line("generator CPU, cleaner idle → cleaning, cores",
         lambda r: f"{median(r, lambda x: x['generator_idle']):.2f} → {median(r, lambda x: x['generator_cleaning']):.2f}")
    line("other processes' CPU, cleaner idle → cleaning, cores",
         lambda r: f"{median(r, lambda x: x['other_idle']):.2f} → {median(r, lambda x: x['other_cleaning']):.2f}")
    line("CPU time stolen by the host, largest of any run", lambda r: f"{max(x['steal'] for x in r):.0%}")
    dirty = statistics.median(row["cleaner"].dirty for size_rows in rows.values() for row in size_rows)
    out.append("")
    out.append("| Cleaner, no produce load | |")
    out.append("|---|---:|")
    out.append(f"| dirty log cleaned, MB/s | {alone.mb_per_s:.0f} ({alone.dirty / 1e6:.0f} MB in {alone.duration:.2f} s) |")
    out.append(f"| dirty log per cycle above, MB | {dirty / 1e6:.0f} |")
    out.append(f"| broker RSS growth while cleaning / key map (128 MiB budget) | {alone.rss_growth / 2**20:.0f} MiB / "
               f"{map_bytes(settings.records, 128 << 20) / 2**20:.0f} MiB |")
    out.append(f"| more keys than the map holds: passes | {memory.passes} ({memory.keys:,} keys, "
               f"{small_map // MAP_SLOT_BYTES * 9 // 10:,} a pass) |")
    out.append(f"| more keys than the map holds: broker RSS growth / key map / budget | {memory.rss_growth / 2**20:.1f} MiB / "
               f"{small_map / 2**20:.0f} MiB / {settings.memory_map_bytes / 2**20:.0f} MiB |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
