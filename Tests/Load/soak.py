#!/usr/bin/env python3
"""Soak test: many concurrent clients, one client that never reads, and an audit of what was kept.

Starts its own broker on a free loopback port with a fresh data directory, creates topic `soak` with
8 partitions, and then, all at the same time:

  * opens --connections TCP connections (1,000 by default). Each sends --rounds Produce requests
    (v3, acks=-1, one RecordBatch of --records-per-batch records with unique values such as
    `c17-r3-0`) to partition `connection % 8` and waits for each answer; every other round it also
    sends a Fetch (v4) for its partition from offset 0 and checks that the answer parses;
  * runs a slow reader: one more connection that pipelines 20,000 Fetch requests for partition 0
    (seeded with 1 MiB first, so the answers are large) and never reads an answer. The broker stops
    reading a connection with too many unanswered requests, so the kernel must stop accepting the
    slow reader's bytes long before all are sent, while every other client still finishes;
  * samples the broker's resident memory every 0.25 s.

Finally it reads every partition back from offset 0 to the high watermark and checks that each
acknowledged record is at the offset its Produce answer gave. It fails (exit code 1, one line saying
why) if any request fails, the slow reader was never held back, the broker's RSS peak reaches
--max-rss-mb, an acknowledged record is missing or misplaced, or the whole run exceeds --timeout.

The load speaks the Kafka protocol directly over asyncio sockets rather than through a client
library, so that a thousand connections cost little (with the harness's codec, petrel_harness.wire).
Talks only to 127.0.0.1 and ends only the broker it started.

    Tests/Load/soak.py [--quick] [--connections 1000] [--rounds 10] [--records-per-batch 5]
                       [--slow-requests 20000] [--max-rss-mb 1024] [--timeout 180]
                       [-- extra petrel broker flags]

The broker binary is $PETREL_BIN, or .build/release/petrel (swift build -c release).
"""
import argparse
import asyncio
import fcntl
import os
import resource
import select
import shutil
import socket
import struct
import sys
import tempfile
import termios
import threading
import time

from petrel_harness import wire
from petrel_harness.broker_process import BrokerProcess, BrokerStartError, free_port, petrel_command
from petrel_harness.wire import (API_NAMES, CREATE_TOPICS, CREATE_TOPICS_VERSION, FETCH, FETCH_VERSION, PRODUCE,
                                 PRODUCE_VERSION, WireError)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOPIC = "soak"
PARTITIONS = 8

LOAD_FETCH_MAX_BYTES = 64 * 1024
SLOW_FETCH_MAX_BYTES = 1024 * 1024
AUDIT_FETCH_MAX_BYTES = 1024 * 1024
RSS_SAMPLE_SECONDS = 0.25
# Partition 0 gets 1 MiB before the load, so that each answer to the slow reader is large and the
# broker's writes to it back up at once. Answers to an empty partition are so small that the kernel
# would buffer all of them and the broker would never need to stop reading.
SEED_BATCHES, SEED_RECORDS_PER_BATCH, SEED_VALUE_BYTES = 8, 128, 1024
# The slow reader's own send buffer. Left to autotuning it grows to several MB and would absorb every
# request without the broker being involved; a small one makes "the kernel refuses more" mean that the
# broker stopped reading.
SLOW_READER_SEND_BUFFER = 64 * 1024


class SoakFailure(Exception):
    """A failed check; its message is the one line the run ends with."""


# A malformed answer from the broker fails the run just as a failed check does.
FAILURES = (SoakFailure, WireError)


def only_answer(api, answers, partition):
    """The one answer a soak request asks for: the partition it named, and nothing else."""
    if len(answers) != 1 or answers[0][:2] != (TOPIC, partition):
        raise SoakFailure(f"{api} response names {[a[:2] for a in answers]}, not ({TOPIC!r}, {partition})")
    return answers[0][2:]


# --- One client connection ------------------------------------------------------------------------

class KafkaConnection:
    """One request at a time over one socket; every read has a time limit."""

    def __init__(self, reader, writer, client_id, timeout):
        self.reader = reader
        self.writer = writer
        self.client_id = client_id
        self.timeout = timeout
        self.correlation_id = 0

    @classmethod
    async def open(cls, port, client_id, timeout):
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, limit=1 << 20), timeout)
        except asyncio.TimeoutError:
            raise SoakFailure(f"{client_id}: could not connect within {timeout} s") from None
        except OSError as error:
            raise SoakFailure(f"{client_id}: could not connect: {error}") from None
        return cls(reader, writer, client_id, timeout)

    async def request(self, api_key, version, body):
        """Sends one request and returns a cursor past the answer's correlation id."""
        self.correlation_id += 1
        api = API_NAMES[api_key]
        try:
            self.writer.write(wire.request_frame(api_key, version, self.correlation_id, self.client_id, body))
            await asyncio.wait_for(self.writer.drain(), self.timeout)
            frame = await asyncio.wait_for(wire.read_frame(self.reader), self.timeout)
        except asyncio.TimeoutError:
            raise SoakFailure(f"{self.client_id}: no {api} response within {self.timeout} s") from None
        except OSError as error:
            raise SoakFailure(f"{self.client_id}: connection lost during {api}: {error!r}") from None
        if frame is None:
            raise SoakFailure(f"{self.client_id}: the broker closed the connection during {api}")
        correlation_id, cursor = wire.response_cursor(frame)
        if correlation_id != self.correlation_id:
            raise SoakFailure(
                f"{self.client_id}: {api} response has correlation id {correlation_id}, expected {self.correlation_id}")
        return cursor

    async def produce(self, partition, values):
        batch = wire.record_batch(values, int(time.time() * 1000))
        cursor = await self.request(PRODUCE, PRODUCE_VERSION, wire.produce_request(TOPIC, partition, batch))
        error, base_offset = only_answer("Produce", wire.produce_response(cursor), partition)
        if error != 0:
            raise SoakFailure(f"{self.client_id}: Produce to partition {partition} failed with error code {error}")
        return base_offset

    async def fetch(self, partition, offset, max_bytes):
        cursor = await self.request(FETCH, FETCH_VERSION, wire.fetch_request(TOPIC, partition, offset, max_bytes))
        error, high_watermark, records = only_answer("Fetch", wire.fetch_response(cursor), partition)
        if error != 0:
            raise SoakFailure(f"{self.client_id}: Fetch of partition {partition} failed with error code {error}")
        return high_watermark, records

    def close(self):
        self.writer.close()


# --- The broker process ---------------------------------------------------------------------------

def raise_open_file_limit(needed):
    """Soft limit up to the hard one, inherited by the broker: both ends hold a socket per client."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        raise SoakFailure(f"the open-file limit is {target}, below the {needed} sockets needed (raise ulimit -Hn)")
    return target


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler(threading.Thread):
    """Tracks the broker's peak RSS from a thread, so a busy event loop does not skip samples."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.start_kib = rss_kib(pid) or 0
        self.peak_kib = self.start_kib
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(RSS_SAMPLE_SECONDS):
            kib = rss_kib(self.pid)
            if kib is None:
                return
            self.peak_kib = max(self.peak_kib, kib)

    def stop(self):
        self.stopped.set()
        self.join()


class SlowReader(threading.Thread):
    """Pipelines Fetch requests as fast as the kernel takes them and never reads an answer.

    Keeps offering bytes until told to stop, so a broker that buffered requests without limit would
    eventually take them all."""

    def __init__(self, port, requests):
        super().__init__(daemon=True)
        body = wire.fetch_request(TOPIC, 0, 0, SLOW_FETCH_MAX_BYTES)
        frames = [wire.request_frame(FETCH, FETCH_VERSION, i, "soak-slow-reader", body) for i in range(1, requests + 1)]
        self.frame_bytes = len(frames[0])  # all the same size: only the correlation id differs
        self.payload = b"".join(frames)
        self.broker_port = port
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SLOW_READER_SEND_BUFFER)
        self.socket.settimeout(10)
        self.socket.connect(("127.0.0.1", port))
        self.socket.setblocking(False)
        self.accepted = 0
        self.last_accepted_at = None
        self.error = None
        self.stopped = threading.Event()

    def run(self):
        view = memoryview(self.payload)
        poller = select.poll()  # not select(): the socket's descriptor may exceed FD_SETSIZE
        poller.register(self.socket, select.POLLOUT)
        while not self.stopped.is_set() and self.accepted < len(view):
            try:
                sent = self.socket.send(view[self.accepted:self.accepted + 65536])
            except BlockingIOError:
                poller.poll(100)
                continue
            except OSError as error:
                self.error = error
                return
            self.accepted += sent
            self.last_accepted_at = time.monotonic()

    def bytes_read_by_broker(self):
        """Accepted bytes minus those still queued in either kernel: what the broker itself took.

        None if the broker's socket is not found in /proc/net/tcp."""
        unsent = struct.unpack("i", fcntl.ioctl(self.socket, termios.TIOCOUTQ, b"\0" * 4))[0]
        unread = broker_receive_queue(self.broker_port, self.socket.getsockname()[1])
        return None if unread is None else self.accepted - unsent - unread

    def stop(self):
        self.stopped.set()
        self.join()
        self.socket.close()


def broker_receive_queue(broker_port, client_port):
    """Bytes waiting unread in the broker's socket for the given client connection."""
    local, remote = f"0100007F:{broker_port:04X}", f"0100007F:{client_port:04X}"
    try:
        with open("/proc/net/tcp") as table:
            for line in table:
                fields = line.split()
                if fields[1:3] == [local, remote]:
                    return int(fields[4].split(":")[1], 16)
    except OSError:
        return None
    return None


# --- Phases ---------------------------------------------------------------------------------------

class Progress:
    """What has happened so far, for the final report and for a timeout message."""

    def __init__(self):
        self.phase = "starting"
        self.acknowledged = []  # (partition, base offset, values, acknowledged at), seed included
        self.load_records = 0
        self.fetches = 0


async def create_topic(port, timeout):
    connection = await KafkaConnection.open(port, "soak-admin", timeout)
    try:
        cursor = await connection.request(CREATE_TOPICS, CREATE_TOPICS_VERSION,
                                          wire.create_topics_request(TOPIC, PARTITIONS))
    finally:
        connection.close()
    results = wire.create_topics_response(cursor)
    if len(results) != 1 or results[0][0] != TOPIC or results[0][1] != 0:
        raise SoakFailure(f"CreateTopics {TOPIC!r} answered {results}")


async def seed_partition_zero(port, timeout, progress):
    connection = await KafkaConnection.open(port, "soak-seed", timeout)
    try:
        for batch in range(SEED_BATCHES):
            values = [f"seed-{batch}-{i}-".encode().ljust(SEED_VALUE_BYTES, b".")
                      for i in range(SEED_RECORDS_PER_BATCH)]
            base_offset = await connection.produce(0, values)
            progress.acknowledged.append((0, base_offset, values, time.monotonic()))
    finally:
        connection.close()


async def run_client(number, connection, rounds, records_per_batch, progress):
    partition = number % PARTITIONS
    acknowledged_end = 0
    for round_number in range(rounds):
        values = [f"c{number}-r{round_number}-{i}".encode() for i in range(records_per_batch)]
        base_offset = await connection.produce(partition, values)
        progress.acknowledged.append((partition, base_offset, values, time.monotonic()))
        progress.load_records += len(values)
        acknowledged_end = base_offset + len(values)
        if round_number % 2 == 1:
            high_watermark, records = await connection.fetch(partition, 0, LOAD_FETCH_MAX_BYTES)
            check_load_fetch(connection.client_id, partition, high_watermark, records, acknowledged_end)
            progress.fetches += 1


def check_load_fetch(client_id, partition, high_watermark, records, acknowledged_end):
    """A fetch from 0 must see this client's own acknowledged writes and a log starting at 0."""
    if high_watermark < acknowledged_end:
        raise SoakFailure(f"{client_id}: partition {partition} high watermark {high_watermark} is below "
                          f"offset {acknowledged_end}, already acknowledged to this client")
    expected = 0
    for base_offset, last_offset, _, _ in wire.complete_batches(records):
        if base_offset != expected:
            raise SoakFailure(f"{client_id}: fetch of partition {partition} has a batch at offset {base_offset}, "
                              f"expected {expected}")
        expected = last_offset + 1
    if expected == 0:
        raise SoakFailure(f"{client_id}: fetch of partition {partition} from 0 returned no whole batch "
                          f"(high watermark {high_watermark})")


async def open_connections(port, count, timeout):
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(KafkaConnection.open(port, f"soak-{n}", timeout)) for n in range(count)]
    return [task.result() for task in tasks]


async def run_load(connections, args, progress):
    async with asyncio.TaskGroup() as group:
        for number, connection in enumerate(connections):
            group.create_task(run_client(number, connection, args.rounds, args.records_per_batch, progress))


async def read_partition(connection, partition):
    """Every record of a partition, offset → value, from 0 to the high watermark."""
    records_by_offset = {}
    offset, high_watermark = 0, None
    while high_watermark is None or offset < high_watermark:
        high_watermark, records = await connection.fetch(partition, offset, AUDIT_FETCH_MAX_BYTES)
        before = offset
        for _, last_offset, start, end in wire.complete_batches(records):
            for record_offset, value in wire.decode_batch(records, start, end):
                if record_offset >= offset:
                    records_by_offset[record_offset] = value
            offset = max(offset, last_offset + 1)
        if offset == before and offset < high_watermark:
            raise SoakFailure(f"audit: fetch of partition {partition} at offset {offset} returned no whole batch "
                              f"below the high watermark {high_watermark}")
    return records_by_offset, high_watermark


async def audit(port, progress, timeout):
    """Checks each acknowledged value is at its acknowledged offset; returns records checked."""
    connection = await KafkaConnection.open(port, "soak-audit", timeout)
    try:
        logs = {}
        for partition in range(PARTITIONS):
            records_by_offset, high_watermark = await read_partition(connection, partition)
            missing = [o for o in range(high_watermark) if o not in records_by_offset]
            if missing:
                raise SoakFailure(f"audit: partition {partition} has no record at {len(missing)} offsets below "
                                  f"its high watermark {high_watermark}, first {missing[0]}")
            logs[partition] = records_by_offset
    finally:
        connection.close()
    checked = 0
    for partition, base_offset, values, _ in progress.acknowledged:
        for index, value in enumerate(values):
            found = logs[partition].get(base_offset + index)
            if found != value:
                raise SoakFailure(f"audit: {value.decode()} was acknowledged at partition {partition} offset "
                                  f"{base_offset + index}, which holds {found!r}")
            checked += 1
    in_log = sum(len(log) for log in logs.values())
    if in_log != checked:
        # Every Produce was acknowledged, so anything more in the log is a duplicate or a stray.
        raise SoakFailure(f"audit: the log holds {in_log:,} records but {checked:,} were acknowledged")
    return checked


# --- Main -----------------------------------------------------------------------------------------

def parse_arguments(argv):
    if "--" in argv:
        split = argv.index("--")
        argv, broker_args = argv[:split], argv[split + 1:]
    else:
        broker_args = []
    parser = argparse.ArgumentParser(
        description="Bounded load-and-soak test of a Petrel broker over loopback.",
        epilog="Arguments after -- are passed to `petrel broker`.")
    parser.add_argument("--quick", action="store_true", help="200 connections x 3 rounds, for fast iteration")
    parser.add_argument("--connections", type=int, help="concurrent client connections (default 1000)")
    parser.add_argument("--rounds", type=int, help="Produce requests per connection (default 10)")
    parser.add_argument("--records-per-batch", type=int, default=5)
    parser.add_argument("--slow-requests", type=int, default=20_000,
                        help="Fetch requests the slow reader tries to send (default 20000)")
    parser.add_argument("--max-rss-mb", type=float, default=1024)
    parser.add_argument("--timeout", type=float, default=180, help="overall deadline in seconds (default 180)")
    parser.add_argument("--request-timeout", type=float, default=30, help="limit on each socket read (default 30)")
    args = parser.parse_args(argv)
    if args.connections is None:
        args.connections = 200 if args.quick else 1000
    if args.rounds is None:
        args.rounds = 3 if args.quick else 10
    args.broker_args = broker_args
    if args.connections < 1 or args.rounds < 1 or args.records_per_batch < 1 or args.slow_requests < 1:
        parser.error("counts must be positive")
    return args


def mib(kib):
    return f"{kib / 1024:,.0f} MB"


async def soak(args, broker, deadline, progress):
    """Everything after the broker is up, bounded by the overall deadline."""
    try:
        async with asyncio.timeout(deadline - time.monotonic()):
            return await run_phases(args, broker, progress)
    except TimeoutError:
        # Only the deadline raises it here: each request's own time limit is reported as a SoakFailure.
        raise SoakFailure(f"overall deadline of {args.timeout:.0f} s passed during {progress.phase} "
                          f"({progress.load_records:,} records acknowledged so far)") from None
    except BaseExceptionGroup as group:
        # A client task failed; the group cancelled the rest. Report the first real failure.
        raise first_failure(group) from None


def first_failure(group):
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            return first_failure(error)
        if isinstance(error, FAILURES):
            return error
    return SoakFailure(f"unexpected error: {group.exceptions[0]!r}")


async def run_phases(args, broker, progress):
    progress.phase = "topic creation"
    await create_topic(broker.port, args.request_timeout)
    progress.phase = "seeding partition 0"
    await seed_partition_zero(broker.port, args.request_timeout, progress)
    rss = RssSampler(broker.process.pid)
    rss.start()
    try:
        progress.phase = "opening connections"
        started = time.monotonic()
        connections = await open_connections(broker.port, args.connections, args.request_timeout)
        connect_seconds = time.monotonic() - started
        print(f"soak: broker pid {broker.process.pid} on 127.0.0.1:{broker.port}; topic {TOPIC} with "
              f"{PARTITIONS} partitions; {args.connections:,} connections open after {connect_seconds:.1f} s",
              flush=True)

        progress.phase = "the load"
        slow_reader = SlowReader(broker.port, args.slow_requests)
        load_started = time.monotonic()
        slow_reader.start()
        try:
            await run_load(connections, args, progress)
            load_seconds = time.monotonic() - load_started
            check_alive(broker)
            slow_reader_took = slow_reader.bytes_read_by_broker()
        finally:
            slow_reader.stop()
            for connection in connections:
                connection.close()
        report_load(args, progress, load_seconds)
        report_slow_reader(slow_reader, slow_reader_took, load_started, progress)

        progress.phase = "the audit"
        checked = await audit(broker.port, progress, args.request_timeout)
        check_alive(broker)
    finally:
        rss.stop()
    print(f"soak: broker RSS peak {mib(rss.peak_kib)} (start {mib(rss.start_kib)})", flush=True)
    if rss.peak_kib >= args.max_rss_mb * 1024:
        raise SoakFailure(f"broker RSS peaked at {mib(rss.peak_kib)}, at or above the {args.max_rss_mb:,.0f} MB limit")
    seeded = SEED_BATCHES * SEED_RECORDS_PER_BATCH
    print(f"soak: audit: {checked:,} of {checked:,} acknowledged records ({seeded:,} of them seeded before the load) "
          f"read back at their offsets", flush=True)


def report_load(args, progress, seconds):
    records = progress.load_records
    print(f"soak: {args.connections:,} connections x {args.rounds:,} rounds x {args.records_per_batch:,} records: "
          f"{records:,} records acknowledged in {seconds:.1f} s ({records / seconds:,.0f} records/s), "
          f"{progress.fetches:,} fetches answered", flush=True)


def report_slow_reader(reader, broker_took, load_started, progress):
    attempted = len(reader.payload)
    if reader.error is not None:
        raise SoakFailure(f"slow reader: the connection failed after {reader.accepted:,} bytes: {reader.error!r}")
    if reader.accepted >= attempted:
        raise SoakFailure(f"slow reader: all {attempted:,} request bytes were accepted; the broker kept reading a "
                          f"connection whose responses are never read")
    stalled_at = reader.last_accepted_at or load_started
    after = sum(len(values) for _, _, values, at in progress.acknowledged if at > stalled_at)
    took = "" if broker_took is None else \
        f", the broker having read {broker_took // reader.frame_bytes:,} of {attempted // reader.frame_bytes:,} requests"
    others = (f"other clients unaffected ({after:,} records acknowledged after that)" if after
              else "it was held back only as the load ended")
    print(f"soak: slow reader: {reader.accepted:,} of {attempted:,} request bytes accepted before the broker "
          f"stopped reading ({stalled_at - load_started:.1f} s into the load{took}); {others}", flush=True)


def main():
    args = parse_arguments(sys.argv[1:])
    deadline = time.monotonic() + args.timeout
    binary = os.environ.get("PETREL_BIN") or os.path.join(ROOT, ".build", "release", "petrel")
    progress = Progress()
    broker = None
    workdir = tempfile.mkdtemp(prefix="petrel-soak-")
    try:
        if not os.access(binary, os.X_OK):
            raise SoakFailure(f"no broker binary at {binary} (swift build -c release, or set PETREL_BIN)")
        # The script's sockets, plus the broker's, plus a margin for files and the slow reader.
        raise_open_file_limit(args.connections + 256)
        port = free_port()
        command = petrel_command(binary, os.path.join(workdir, "data"), port, "--metrics", "off", "--log-level", "warning",
                                 *args.broker_args)
        broker = BrokerProcess(command, port, os.path.join(workdir, "broker.log"))
        try:
            broker.start(min(30, deadline - time.monotonic()))
        except BrokerStartError as failure:
            raise SoakFailure(str(failure)) from None
        asyncio.run(soak(args, broker, deadline, progress))
        code = broker.stop()
        if code != 0:
            raise SoakFailure(f"the broker exited with {code} after SIGTERM, not 0")
        report_broker_log(broker)
        return 0
    except FAILURES as failure:
        if broker is not None:
            broker.stop()
            for line in broker.log_tail().splitlines():
                print(f"  broker: {line}", file=sys.stderr)
        print(f"soak: FAILED: {failure}", flush=True)
        return 1
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def check_alive(broker):
    if not broker.running:
        raise SoakFailure(f"the broker exited with {broker.process.returncode} during the run")


def report_broker_log(broker):
    lines = broker.log().splitlines()
    if lines:
        print(f"soak: the broker logged {len(lines):,} lines at warning or above; the last: {lines[-1]}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
