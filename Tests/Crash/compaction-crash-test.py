#!/usr/bin/env python3
"""Compaction crash test: one idempotent producer (acks=all) sends keyed updates and tombstones to a
compacted topic with small segments while a busy log cleaner rewrites them, and the broker is killed
with SIGKILL cycle after cycle: at a random moment, or the moment the cleaner has `.cleaned` or `.swap`
files on disk. It shows that kill -9 at any point of a cleaning leaves either the old segments or the
new ones, never a mix, and loses nothing acknowledged:

  * after each kill the test notes which cleaner files the kill left, then restarts the broker with the
    cleaner off and checks that start-up removed or completed every one of them (no `.cleaned` or
    `.swap` file left) and that the segment files on disk cover disjoint, increasing offset ranges;
    the producer, which lives through every kill, must then get every record it sent acknowledged
    (no error: the broker still knows its sequence numbers in a compacted log), and every key is
    audited by reading the whole topic back;
  * the audit: offsets strictly increase and start at 0, the high watermark never goes back, every
    record is one the producer sent (same key, value and version as sent), a record at an acknowledged
    offset is the one acknowledged there, each key's versions increase with its offsets (nothing
    written twice), and each key's last record is its latest acknowledged value (a tombstone if that
    was a delete: delete.retention.ms is an hour, so tombstones stay and a deleted key must read back
    as None);
  * at the end, with the cleaner on and filler records rolling every key out of the active segment,
    the topic must compact to one record per key that passes the same audit, again after a graceful
    restart, with no cleaner file left after the graceful stop.

It prints how many kills landed mid-cleaning and fails if none did. Bounded: a fixed number of cycles,
each with a time limit. Talks only to 127.0.0.1 and ends only the broker it started. With
`--delete-retention-ms` short, tombstones expire during the run and a deleted key may also be absent
(never an older value); a smaller `--dedupe-buffer-size` (1024 at least) makes cleanings take more
passes.

    Tests/Crash/compaction-crash-test.py [--cycles 20] [--delete-retention-ms 3600000]
                                         [--dedupe-buffer-size 4096] [--petrel .build/debug/petrel]
"""
import argparse
import functools
import hashlib
import logging
import os
import random
import re
import struct
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from petrel_harness.broker_process import BrokerProcess, BrokerStartError, free_port, petrel_command

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOPIC = "compaction-crash"
PARTITIONS = 3
KEYS = 600
TOMBSTONE_SHARE = 0.1
TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "segment.bytes": "4096",
    "min.cleanable.dirty.ratio": "0.01",
    "min.compaction.lag.ms": "0",
}
# By default no tombstone expires during the run: a deleted key must read back as None.
DELETE_RETENTION_MS = 3_600_000
# A busy cleaner: it looks again every 20 ms, two partitions at a time, and each cleaning's key map (half
# the dedupe buffer) holds 57 keys, fewer than a partition has, so a cleaning takes several passes, each
# with its own swap.
CLEANER_ARGS = ["--log-cleaner-backoff-ms", "20", "--log-cleaner-threads", "2"]
DEDUPE_BUFFER_BYTES = 4096
CLEANER_FILE = re.compile(r"\.(cleaned|swap)$")
COMPLETED_SWAP = "completed a log cleaning interrupted by a crash"
CLEANING_FAILED = "log cleaning failed"
# The clients' "connection refused" reports while the broker is down are the point of the test, not news.
QUIET = logging.getLogger("compaction-crash-test-clients")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False


class Failed(Exception):
    pass


def key_name(index):
    return b"k%04d" % index


def partition_of(key):
    return int(key[1:]) % PARTITIONS


def value_of(key, version):
    """A record's value follows from its key and version, so every record read back can be checked."""
    digest = hashlib.sha256(b"%s:%d" % (key, version)).hexdigest().encode()
    return b"%s:%d:%s" % (key, version, digest)


class Ledger:
    """What the producer sent and what the broker acknowledged. Each key lives in one partition, and a
    partition's offsets follow the order of its writes, so the acknowledged write with the highest offset
    is the key's latest."""

    def __init__(self):
        self.lock = threading.Lock()
        self.versions = {key_name(i): 0 for i in range(KEYS)}  # versions sent so far, per key
        self.tombstones = {key: set() for key in self.versions}  # versions that were deletes
        self.acked_at = {}  # (partition, offset) -> (key, version)
        self.latest = {}  # key -> (offset, version): the latest acknowledged write
        self.sent = 0
        self.errors = []

    def next_write(self, key, delete):
        version = self.versions[key] + 1
        self.versions[key] = version
        if delete:
            self.tombstones[key].add(version)
        self.sent += 1
        return version

    def expected_value(self, key, version):
        return None if version in self.tombstones[key] else value_of(key, version)

    def delivered(self, version, error, message):
        """The delivery report of `version` (a delivery report does not carry the record's headers). The
        producer retries through a kill, so any error is a failure."""
        if error is not None:
            with self.lock:
                self.errors.append(f"{message.key()!r} version {version}: {error}")
            return
        key, partition, offset = message.key(), message.partition(), message.offset()
        with self.lock:
            self.acked_at[(partition, offset)] = (key, version)
            if key not in self.latest or self.latest[key][0] < offset:
                self.latest[key] = (offset, version)

    def high_marks(self):
        """Per partition, the offset after the highest acknowledged one."""
        marks = [0] * PARTITIONS
        for partition, offset in self.acked_at:
            marks[partition] = max(marks[partition], offset + 1)
        return marks


class Writer:
    """One idempotent producer for the whole run, on a thread of its own, sending while `sending` is set.
    It is never purged: what a kill cuts off it sends again to the restarted broker."""

    def __init__(self, bootstrap, ledger):
        self.ledger = ledger
        self.sending = threading.Event()
        self.idle = threading.Event()  # set once the thread has seen `sending` cleared
        self.done = threading.Event()
        self.producer = Producer({
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "message.timeout.ms": 120000,
            "reconnect.backoff.ms": 20,
            "reconnect.backoff.max.ms": 200,
            "retry.backoff.ms": 20,
            "retry.backoff.max.ms": 200,
            "linger.ms": 2,
            # Small batches, so that the 4 KiB segments roll and the cleaner has many to merge.
            "batch.num.messages": 40,
            "queue.buffering.max.messages": 1000,
            "logger": QUIET,
        })
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done.is_set():
            if not self.sending.is_set():
                self.idle.set()
                self.sending.wait(0.05)
                continue
            self.idle.clear()
            key = key_name(random.randrange(KEYS))
            delete = random.random() < TOMBSTONE_SHARE
            version = self.ledger.next_write(key, delete)
            value = None if delete else value_of(key, version)
            while not self.done.is_set():
                try:
                    self.producer.produce(TOPIC, key=key, value=value, partition=partition_of(key),
                                          headers=[("v", b"%d" % version)],
                                          on_delivery=functools.partial(self.ledger.delivered, version))
                    break
                except BufferError:
                    self.producer.poll(0.01)
                except KafkaException as error:  # fatal: the idempotent producer gave up
                    with self.ledger.lock:
                        self.ledger.errors.append(f"produce: {error}")
                    self.done.set()
            self.producer.poll(0)

    def pause(self):
        self.sending.clear()

    def drain(self, timeout=60):
        """Once the thread has stopped sending, waits until everything sent is acknowledged (or failed)."""
        deadline = time.monotonic() + timeout
        while not self.idle.is_set():
            if time.monotonic() > deadline:
                raise Failed(f"the producer did not stop sending within {timeout} s")
            self.producer.poll(0.05)
        left = self.producer.flush(max(1, deadline - time.monotonic()))
        if left:
            raise Failed(f"{left} records sent before the kill were still unacknowledged {timeout} s after the restart")

    def close(self):
        self.done.set()
        self.sending.set()
        self.thread.join(10)


def produce_fillers(bootstrap, count):
    """Records with keys of their own: they roll the active segment past every audited key."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 2, "batch.num.messages": 40, "logger": QUIET})
    errors = []
    for i in range(count):
        producer.produce(TOPIC, key=b"filler-%d" % i, value=os.urandom(48).hex().encode(), partition=i % PARTITIONS,
                         on_delivery=lambda error, _: error and errors.append(str(error)))
        producer.poll(0)
    if producer.flush(30) != 0 or errors:
        raise Failed(f"the filler records were not all acknowledged: {errors[:3]}")


def create_topic(bootstrap, delete_retention_ms):
    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": QUIET})
    config = dict(TOPIC_CONFIG, **{"delete.retention.ms": str(delete_retention_ms)})
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1, config=config)])[TOPIC].result(30)


def read_topic(bootstrap):
    """Every record of every partition, in order: ({partition: [(offset, key, value, version)]},
    {partition: (low, high)})."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "compaction-crash-audit",
                         "enable.auto.commit": False, "enable.partition.eof": True, "check.crcs": True,
                         "fetch.max.bytes": 4 * 1024 * 1024, "logger": QUIET})
    try:
        marks = {p: consumer.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10) for p in range(PARTITIONS)}
        consumer.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
        records = {p: [] for p in range(PARTITIONS)}
        at_end = set()
        deadline = time.time() + 60
        while len(at_end) < PARTITIONS:
            if time.time() > deadline:
                raise Failed(f"reading the topic back timed out; at the end of partitions {sorted(at_end)}")
            for message in consumer.consume(5000, timeout=0.1):
                partition = message.partition()
                if message.error():
                    if message.error().code() != KafkaError._PARTITION_EOF:
                        raise Failed(f"the consumer saw an error: {message.error()}")
                    if message.offset() >= marks[partition][1]:
                        at_end.add(partition)
                    continue
                headers = dict(message.headers() or [])
                version = int(headers["v"]) if "v" in headers else None
                records[partition].append((message.offset(), message.key(), message.value(), version))
        return records, marks
    finally:
        consumer.close()


def audit(records, marks, ledger, previous_highs, final, tombstones_expire=False):
    """Checks the read-back against the ledger (see the module docstring); returns the keys audited. With
    `final`, also that compaction got the topic to one record per key; with `tombstones_expire`, a key
    whose latest acknowledged write was a delete may be gone altogether."""
    latest_in_log = {}
    acknowledged_ends = ledger.high_marks()
    for partition in range(PARTITIONS):
        low, high = marks[partition]
        if low != 0:
            raise Failed(f"partition {partition} starts at {low}: compaction must keep the offsets, and 0 with them")
        if high < previous_highs[partition]:
            raise Failed(f"partition {partition}: the high watermark went back from {previous_highs[partition]} "
                         f"to {high}")
        if high < acknowledged_ends[partition]:
            raise Failed(f"partition {partition}: the high watermark {high} is below acknowledged offsets "
                         f"(up to {acknowledged_ends[partition] - 1})")
        previous_highs[partition] = high
        last_offset = -1
        seen = set()
        for offset, key, value, version in records[partition]:
            where = f"{TOPIC}-{partition} offset {offset}"
            if offset <= last_offset:
                raise Failed(f"{where} follows offset {last_offset}: offsets must strictly increase")
            if offset >= high:
                raise Failed(f"{where} is at or above the high watermark {high}")
            last_offset = offset
            if key.startswith(b"filler-"):
                if key in seen:
                    raise Failed(f"{where}: filler {key!r} is in the log twice")
                seen.add(key)
                continue
            if key not in ledger.versions or partition_of(key) != partition:
                raise Failed(f"{where}: key {key!r} was never sent to this partition")
            if version is None or not 1 <= version <= ledger.versions[key]:
                raise Failed(f"{where}: {key!r} version {version} was never sent")
            if value != ledger.expected_value(key, version):
                raise Failed(f"{where}: {key!r} version {version} reads {value!r}, "
                             f"not the {ledger.expected_value(key, version)!r} that was sent")
            acked = ledger.acked_at.get((partition, offset))
            if acked is not None and acked != (key, version):
                raise Failed(f"{where} holds {key!r} version {version}, but {acked} was acknowledged there")
            previous = latest_in_log.get(key)
            if previous is not None and previous[1] >= version:
                raise Failed(f"{where}: {key!r} version {version} comes after its version {previous[1]} "
                             f"at offset {previous[0]}")
            if final and previous is not None:
                raise Failed(f"{where}: {key!r} is in the compacted log twice (also at offset {previous[0]})")
            latest_in_log[key] = (offset, version)
        if last_offset != high - 1 and high > 0:
            raise Failed(f"partition {partition}: the last record read is at {last_offset}, "
                         f"the high watermark {high}: the newest record must never be compacted away")
    for key, (acked_offset, acked_version) in ledger.latest.items():
        found = latest_in_log.get(key)
        deleted = acked_version in ledger.tombstones[key]
        what = "its delete" if deleted else f"version {acked_version}"
        # An expired tombstone takes its key with it: the acknowledged one, or a later one the kill cut off.
        if found is None and tombstones_expire and max(ledger.tombstones[key], default=0) >= acked_version:
            continue
        if found is None:
            raise Failed(f"{key!r} is not in the log: {what}, acknowledged at offset {acked_offset}, was lost")
        offset, version = found
        if offset < acked_offset:
            raise Failed(f"{key!r} reads as version {version} at offset {offset}, an older write than {what} "
                         f"acknowledged at offset {acked_offset}")
        if offset == acked_offset and version != acked_version:
            raise Failed(f"{key!r} at offset {offset} is version {version}, but {what} was acknowledged there")
    return len(ledger.latest)


def cleaner_files(data):
    """The cleaner's `.cleaned` and `.swap` files in the topic's partition folders."""
    found = []
    for partition in range(PARTITIONS):
        folder = os.path.join(data, f"{TOPIC}-{partition}")
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            continue
        found += [f"{TOPIC}-{partition}/{name}" for name in names if CLEANER_FILE.search(name)]
    return found


def check_segments_on_disk(data):
    """The segment files of every partition cover disjoint, increasing offset ranges: no cleaned segment
    sits beside a segment it replaced."""
    for partition in range(PARTITIONS):
        folder = os.path.join(data, f"{TOPIC}-{partition}")
        bases = sorted(int(name[:-4]) for name in os.listdir(folder) if re.fullmatch(r"\d{20}\.log", name))
        next_offset = 0
        for base in bases:
            path = os.path.join(folder, "%020d.log" % base)
            if base < next_offset:
                raise Failed(f"{path} starts at {base}, inside the previous segment (which ends at "
                             f"{next_offset - 1})")
            with open(path, "rb") as f:
                content = f.read()
            position = 0
            while position + 27 <= len(content):
                batch_base, length = struct.unpack_from(">qi", content, position)
                if length <= 0:
                    break
                (last_delta,) = struct.unpack_from(">i", content, position + 23)
                if batch_base < max(base, next_offset):
                    raise Failed(f"{path}: a batch at offset {batch_base} overlaps offsets before it")
                next_offset = batch_base + last_delta + 1
                position += 12 + length


def count_in_log(broker, text):
    return broker.log().count(text)


class Run:
    def __init__(self, petrel, work, delete_retention_ms, dedupe_buffer_bytes):
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.data = os.path.join(work, "data")
        self.log_path = os.path.join(work, "broker.log")
        self.petrel = petrel
        self.ledger = Ledger()
        self.highs = [0] * PARTITIONS
        self.kills = {"random": 0, "while cleaning": 0, "at a swap": 0}
        self.mid_cleaning = 0  # kills that left .cleaned or .swap files
        self.mid_swap = 0  # kills that left a committed, unfinished swap (a .log.swap file)
        self.swaps_completed = 0
        self.tombstones_expire = delete_retention_ms < DELETE_RETENTION_MS
        self.dedupe_buffer_bytes = dedupe_buffer_bytes
        self.broker = None
        self.writer = None

    def start(self, cleaner=True):
        args = ["--metrics", "off", "--default-partitions", str(PARTITIONS), *CLEANER_ARGS,
                "--log-cleaner-dedupe-buffer-size", str(self.dedupe_buffer_bytes)]
        if not cleaner:
            args += ["--log-cleaner-enable", "false"]
        self.broker = BrokerProcess(petrel_command(self.petrel, self.data, self.port, *args), self.port,
                                    self.log_path)
        self.broker.start()

    def stop(self):
        code = self.broker.stop()
        if code != 0:
            raise Failed(f"the broker exited with {code} on a graceful stop:\n{self.broker.log_tail()}")

    def cycle(self, number):
        self.start()
        self.writer.sending.set()
        # One cycle in three kills at a random moment. The others wait for the cleaner (for at most 3 s):
        # one kills at once or a few ms after it sees a cleaner file (a .cleaned file, usually), the other
        # as soon as it sees a .swap file, between the commit point and the end of the swap.
        mode = ("random", "while cleaning", "at a swap")[number % 3]
        self.kills[mode] += 1
        if mode == "random":
            time.sleep(random.uniform(0.3, 1.5))
        else:
            time.sleep(random.uniform(0.3, 0.8))
            deadline = time.monotonic() + 3
            if mode == "while cleaning":
                while time.monotonic() < deadline and not cleaner_files(self.data):
                    time.sleep(0.001)
                time.sleep(random.choice([0, 0, random.uniform(0, 0.005)]))
            else:
                while time.monotonic() < deadline and not [f for f in cleaner_files(self.data) if f.endswith(".swap")]:
                    time.sleep(0.0002)
        self.broker.kill()
        left = cleaner_files(self.data)
        self.writer.pause()
        if left:
            self.mid_cleaning += 1
        if any(name.endswith(".log.swap") for name in left):
            self.mid_swap += 1

        # Start-up must roll back or complete every interrupted cleaning before it serves anything.
        completed_before = count_in_log(self.broker, COMPLETED_SWAP)
        self.start(cleaner=False)
        completed = count_in_log(self.broker, COMPLETED_SWAP) - completed_before
        self.swaps_completed += completed
        remaining = cleaner_files(self.data)
        if remaining:
            raise Failed(f"after the restart the cleaner's files are still there: {remaining} (the kill left {left})")
        log_swaps = sum(1 for name in left if name.endswith(".log.swap"))
        if completed != log_swaps:
            raise Failed(f"the kill left {log_swaps} committed swaps ({left}), the restart completed {completed}")
        check_segments_on_disk(self.data)
        self.writer.drain()
        self.check_producer()
        records, marks = read_topic(self.bootstrap)
        with self.ledger.lock:
            audit(records, marks, self.ledger, self.highs, final=False, tombstones_expire=self.tombstones_expire)
        self.stop()

    def finish(self):
        """Compacts the topic to one record per key, with the cleaner on; checks it, and again after a
        graceful restart."""
        self.start()
        produce_fillers(self.bootstrap, 40 * PARTITIONS * 4)
        deadline = time.monotonic() + 90
        while True:
            records, marks = read_topic(self.bootstrap)
            keys = [r[1] for partition in records.values() for r in partition]
            if len(keys) == len(set(keys)):
                break
            if time.monotonic() > deadline:
                raise Failed(f"the cleaner did not compact the topic to one record per key within 90 s "
                             f"({len(keys)} records, {len(set(keys))} keys)")
            time.sleep(0.5)
        keys = audit(records, marks, self.ledger, self.highs, final=True, tombstones_expire=self.tombstones_expire)
        self.stop()
        left = cleaner_files(self.data)
        if left:
            raise Failed(f"a graceful stop left the cleaner's files: {left}")
        self.start()
        again, marks = read_topic(self.bootstrap)
        audit(again, marks, self.ledger, self.highs, final=True, tombstones_expire=self.tombstones_expire)
        # (Expiring tombstones may still go after the restart.)
        if again != records and not self.tombstones_expire:
            raise Failed("after a graceful restart the compacted topic reads back differently")
        self.stop()
        return keys, sum(len(partition) for partition in records.values())

    def check_producer(self):
        with self.ledger.lock:
            if self.ledger.errors:
                raise Failed(f"the producer got {len(self.ledger.errors)} errors, e.g. {self.ledger.errors[:3]}")
            if len(self.ledger.acked_at) != self.ledger.sent:
                raise Failed(f"{self.ledger.sent} records were sent but {len(self.ledger.acked_at)} acknowledged "
                             f"at distinct offsets")
            if not self.ledger.acked_at:
                raise Failed("no record was acknowledged: there is nothing to audit")

    def check_broker_log(self):
        failures = [line for line in self.broker.log().splitlines() if CLEANING_FAILED in line]
        if failures:
            raise Failed(f"the cleaner failed {len(failures)} times, e.g. {failures[0]}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--delete-retention-ms", type=int, default=DELETE_RETENTION_MS)
    parser.add_argument("--dedupe-buffer-size", type=int, default=DEDUPE_BUFFER_BYTES)
    parser.add_argument("--petrel", default=os.environ.get("PETREL_BIN", os.path.join(ROOT, ".build", "debug", "petrel")))
    args = parser.parse_args()
    seed = os.environ.get("CRASH_TEST_SEED", str(time.time()))
    random.seed(seed)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="petrel-compaction-crash-") as work:
        run = Run(args.petrel, work, args.delete_retention_ms, args.dedupe_buffer_size)
        cycle = 0
        try:
            run.start()
            create_topic(run.bootstrap, args.delete_retention_ms)
            run.stop()
            run.writer = Writer(run.bootstrap, run.ledger)
            for cycle in range(1, args.cycles + 1):
                run.cycle(cycle)
                run.check_broker_log()
            cycle = "final"
            keys, compacted = run.finish()
            run.check_broker_log()
        except (Failed, BrokerStartError) as failure:
            run.broker.kill()
            print(f"compaction crash test FAILED in cycle {cycle} (seed {seed}): {failure}\n"
                  f"broker log tail:\n{run.broker.log_tail()}")
            kept = os.path.join(tempfile.gettempdir(), f"petrel-compaction-crash-failed-{os.getpid()}")
            os.rename(work, kept)
            os.mkdir(work)  # for TemporaryDirectory's clean-up
            print(f"data directory and broker log kept in {kept}")
            sys.exit(1)
        finally:
            if run.writer is not None:
                run.writer.close()
            if run.broker is not None:
                run.broker.kill()
    ledger = run.ledger
    deletes = sum(1 for key, (_, version) in ledger.latest.items() if version in ledger.tombstones[key])
    print(f"compaction crash test: {args.cycles} kill -9 cycles ({run.kills['random']} at random, "
          f"{run.kills['while cleaning']} timed to a cleaning, {run.kills['at a swap']} to a swap), "
          f"{run.mid_cleaning} kills mid-cleaning ({run.mid_swap} after the commit point; "
          f"{run.swaps_completed} swaps completed at restart); {len(ledger.acked_at)} records sent and "
          f"acknowledged; {keys} keys audited after every restart ({deletes} deleted), compacted to "
          f"{compacted} records; {time.monotonic() - started:.0f} s")
    if run.mid_cleaning == 0:
        print("compaction crash test FAILED: no kill landed while the cleaner had .cleaned or .swap files on "
              "disk, so the run did not test what it is for; run it again or with more --cycles")
        sys.exit(1)


if __name__ == "__main__":
    main()
