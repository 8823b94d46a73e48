#!/usr/bin/env python3
"""How long a broker takes to start when it holds many groups' committed offsets: it replays them all
into memory before it accepts a connection.

For each broker binary: a fresh data directory, a topic of 10 partitions, GROUPS groups each committing
PARTITIONS offsets (one OffsetCommit v2 per group, pipelined on one connection, then a second round that
supersedes the first, so the offsets log holds twice what is live), then

  - clean restart: stop with SIGTERM, start, time until it accepts connections;
  - kill -9 restart: SIGKILL, start, time (the recovery scan, then the replay);

and after each start a sample of groups is fetched back (OffsetFetch v1) and must match. With
`--baseline OLD_BINARY` (a build from before committed offsets moved into the `__consumer_offsets`
topic) the same is run on the old binary, and then the new binary is started on the old binary's data
directory: the first start migrates the offsets (timed), the next is a plain replay again.

    Benchmarks/Drivers/bench-offsets-replay.py [--groups 100000] [--baseline /path/to/old/petrel] [--json out.json]

Loopback only; every broker it starts is stopped by its pid; every wait is bounded.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "Tests", "Harness"))
from petrel_harness.broker_process import BrokerProcess, free_port, petrel_command  # noqa: E402
from petrel_harness.wire import (array, create_topics_request, int16, int32, int64, request_frame,  # noqa: E402
                                 string)

TOPIC, TOPIC_PARTITIONS = "orders", 10
OFFSET_COMMIT, OFFSET_FETCH, CREATE_TOPICS = 8, 9, 19


def commit_body(group, partitions, round_number):
    """OffsetCommit v2: generation -1 and no member (a commit from outside any live group)."""
    offsets = [int32(p) + int64(round_number * 1000 + p) + int16(-1) for p in range(partitions)]
    return (string(group) + int32(-1) + string("") + int64(-1)
            + array([string(TOPIC) + array(offsets)]))


def fetch_body(group, partitions):
    """OffsetFetch v1 for the group's partitions."""
    return string(group) + array([string(TOPIC) + array([int32(p) for p in range(partitions)])])


class Connection:
    def __init__(self, port):
        self.socket = socket.create_connection(("127.0.0.1", port), 10)
        self.socket.settimeout(120)
        self.correlation = 0
        self.buffer = b""

    def send(self, api, version, body):
        self.correlation += 1
        self.socket.sendall(request_frame(api, version, self.correlation, "bench-offsets", body))

    def receive(self):
        while len(self.buffer) < 4 or len(self.buffer) < 4 + struct.unpack_from(">i", self.buffer)[0]:
            chunk = self.socket.recv(1 << 20)
            if not chunk:
                raise RuntimeError("the broker closed the connection")
            self.buffer += chunk
        length = struct.unpack_from(">i", self.buffer)[0]
        frame, self.buffer = self.buffer[4:4 + length], self.buffer[4 + length:]
        return frame

    def close(self):
        self.socket.close()


def commit_all(port, groups, partitions, round_number):
    """Pipelines one commit per group, at most 1,000 unanswered, and checks every error code."""
    connection = Connection(port)
    try:
        sent = received = 0
        while received < groups:
            while sent < groups and sent - received < 1000:
                connection.send(OFFSET_COMMIT, 2, commit_body(f"group-{sent}", partitions, round_number))
                sent += 1
            frame = connection.receive()
            received += 1
            # correlation id, topics [name, partitions [index, error]]: every error code must be 0.
            body = frame[4:]
            name_length = struct.unpack_from(">h", body, 4)[0]
            position = 4 + 2 + name_length + 4
            for _ in range(partitions):
                error = struct.unpack_from(">h", body, position + 4)[0]
                if error:
                    raise RuntimeError(f"OffsetCommit answered error {error}")
                position += 6
    finally:
        connection.close()


def fetched_offsets(port, group, partitions):
    connection = Connection(port)
    try:
        connection.send(OFFSET_FETCH, 1, fetch_body(group, partitions))
        body = connection.receive()[4:]
        name_length = struct.unpack_from(">h", body, 4)[0]
        position, offsets = 4 + 2 + name_length + 4, []
        for _ in range(partitions):
            offsets.append(struct.unpack_from(">q", body, position + 4)[0])
            metadata_length = struct.unpack_from(">h", body, position + 12)[0]
            position += 4 + 8 + 2 + max(0, metadata_length) + 2
        return offsets
    finally:
        connection.close()


def check(port, groups, partitions, round_number, failures, label):
    for index in sorted({0, groups // 2, groups - 1}):
        wanted = [round_number * 1000 + p for p in range(partitions)]
        got = fetched_offsets(port, f"group-{index}", partitions)
        if got != wanted:
            failures.append(f"{label}: group-{index} has {got}, wanted {wanted}")


def timed_start(broker):
    started = time.monotonic()
    broker.start(timeout=600)
    return round(time.monotonic() - started, 2)


def run(binary, workdir, name, args, failures, data=None):
    """Fills a directory (unless `data` is given) and times its restarts; returns the figures."""
    data = data or os.path.join(workdir, f"{name}-data")
    port = free_port()
    broker = BrokerProcess(petrel_command(binary, data, port, "--metrics", "off", "--log-level", "warning"),
                           port, os.path.join(workdir, f"{name}.log"))
    figures = {"binary": binary}
    try:
        figures["first_start_s"] = timed_start(broker)
        if not args.reuse:
            connection = Connection(port)
            connection.send(CREATE_TOPICS, 4, create_topics_request(TOPIC, TOPIC_PARTITIONS))
            connection.receive()
            connection.close()
            started = time.monotonic()
            for round_number in (1, 2):
                commit_all(port, args.groups, args.partitions, round_number)
            figures["commit_s"] = round(time.monotonic() - started, 1)
        check(port, args.groups, args.partitions, 2, failures, f"{name} after filling")
        broker.stop(timeout=120)
        figures["clean_restart_s"] = timed_start(broker)
        check(port, args.groups, args.partitions, 2, failures, f"{name} after a clean restart")
        broker.kill()
        figures["kill9_restart_s"] = timed_start(broker)
        check(port, args.groups, args.partitions, 2, failures, f"{name} after kill -9")
        figures["data_bytes"] = sum(os.path.getsize(os.path.join(folder, file))
                                    for folder, _, files in os.walk(data) for file in files)
    finally:
        if broker.running:
            broker.stop(timeout=120)
    return figures, data


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=1, help="offsets each group commits (default 1)")
    parser.add_argument("--petrel", default=os.environ.get("PETREL_BIN", os.path.join(ROOT, ".build/release/petrel")))
    parser.add_argument("--baseline", help="an older petrel binary, to compare with and migrate from")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    args.reuse = False
    failures, results = [], {"groups": args.groups, "offsets_per_group": args.partitions}
    with tempfile.TemporaryDirectory(prefix="petrel-offsets-") as workdir:
        results["petrel"], _ = run(args.petrel, workdir, "petrel", args, failures)
        if args.baseline:
            results["baseline"], old_data = run(args.baseline, workdir, "baseline", args, failures)
            args.reuse = True
            results["migrated"], _ = run(args.petrel, workdir, "migrated", args, failures, data=old_data)
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
