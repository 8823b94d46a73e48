#!/usr/bin/env python3
"""Crash test: a producer sends with acks=all while the broker is killed with SIGKILL at random
moments and restarted, cycle after cycle. After every restart the whole partition log is read back and
checked:

  * offsets run 0, 1, 2, ... without a gap (the log recovered to a valid prefix);
  * every batch passes its CRC (the consumer checks them) and nothing corrupt is ever served;
  * every acknowledged record is present exactly once, at the offset it was acknowledged with.

Runs once per flush policy (always, then never) and prints what it checked. Bounded: a fixed number of
cycles, each with a time limit. Talks only to 127.0.0.1 and ends only the broker it started.

    Tests/Crash/crash-test.py [--cycles 20] [--petrel .build/debug/petrel]
"""
import argparse
import logging
import os
import random
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from petrel_harness.broker_process import BrokerProcess, BrokerStartError, free_port, petrel_command

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOPIC = "crash"
# The clients' "connection refused" reports while the broker is down are the point of the test, not news.
QUIET = logging.getLogger("crash-test-clients")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False


def produce_until_stopped(bootstrap, cycle, stop, acked, lock):
    """Sends unique values until told to stop; records what was acknowledged, and where."""
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": False,
        # No retries: a request lost with the broker is reported, never silently sent twice.
        "retries": 0,
        "message.timeout.ms": 4000,
        "linger.ms": 2,
        "batch.num.messages": 200,
        "logger": QUIET,
    })

    def delivered(error, message):
        if error is None:
            with lock:
                acked[message.value()] = message.offset()

    sequence = 0
    while not stop.is_set():
        try:
            producer.produce(TOPIC, value=b"c%d-m%d" % (cycle, sequence), on_delivery=delivered)
            sequence += 1
        except BufferError:
            producer.poll(0.01)
            continue
        if sequence % 20 == 0:
            producer.poll(0.01)  # a few thousand records a second keeps each read-back check short
    # The broker is dead: whatever is still queued or in flight was not acknowledged.
    producer.purge(in_queue=True, in_flight=True)
    producer.flush(5)
    return sequence


def read_log(bootstrap):
    """Every record of the partition, in order, as (offset, value)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "crash-check", "enable.auto.commit": False,
                         "check.crcs": True, "fetch.max.bytes": 4 * 1024 * 1024, "logger": QUIET})
    partition = TopicPartition(TOPIC, 0, 0)
    _, high = consumer.get_watermark_offsets(partition, timeout=10)
    consumer.assign([partition])
    records = []
    deadline = time.time() + 60
    while (not records or records[-1][0] < high - 1) and high > 0:
        if time.time() > deadline:
            raise AssertionError(f"reading the log timed out at {len(records)} of {high} records")
        for message in consumer.consume(5000, timeout=1):
            if message.error():
                raise AssertionError(f"the consumer saw an error: {message.error()}")
            records.append((message.offset(), message.value()))
    consumer.close()
    return records, high


def check(records, high, acked):
    offsets = [offset for offset, _ in records]
    if offsets != list(range(high)):
        raise AssertionError(f"offsets are not 0..{high - 1} without gaps (got {len(offsets)} records)")
    at = {}
    for offset, value in records:
        if value in at:
            raise AssertionError(f"{value!r} is in the log twice, at {at[value]} and {offset}")
        at[value] = offset
    for value, offset in acked.items():
        if at.get(value) != offset:
            raise AssertionError(f"{value!r} was acknowledged at offset {offset} but is at {at.get(value)}")


def run(petrel, flush, cycles, work):
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    log_path = os.path.join(work, f"broker-{flush}.log")
    command = petrel_command(petrel, os.path.join(work, f"data-{flush}"), port, "--flush", flush,
                             "--segment-bytes", "65536", "--default-partitions", "1")
    broker = BrokerProcess(command, port, log_path)
    acked, lock = {}, threading.Lock()
    sent = 0
    try:
        for cycle in range(cycles):
            broker.start()
            stop = threading.Event()
            result = {}
            worker = threading.Thread(
                target=lambda: result.update(sent=produce_until_stopped(bootstrap, cycle, stop, acked, lock)))
            worker.start()
            time.sleep(random.uniform(0.3, 1.5))
            broker.kill()
            stop.set()
            worker.join(30)
            if worker.is_alive():
                raise AssertionError("the producer did not stop")
            sent += result.get("sent", 0)
            broker.start()
            records, high = read_log(bootstrap)
            with lock:
                check(records, high, acked)
            broker.stop()
    except (AssertionError, BrokerStartError) as failure:
        broker.stop()
        print(f"crash test (flush={flush}) FAILED in cycle {cycle + 1}: {failure}; broker log: {log_path}")
        return False
    print(f"crash test (flush={flush}): {cycles} kill -9 cycles, {len(acked)} acknowledged records checked "
          f"(of {sent} sent), log of {high} records valid after every restart")
    return True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--petrel", default=os.environ.get("PETREL_BIN", os.path.join(ROOT, ".build", "debug", "petrel")))
    args = parser.parse_args()
    random.seed(os.environ.get("CRASH_TEST_SEED", time.time()))
    with tempfile.TemporaryDirectory(prefix="petrel-crash-") as work:
        ok = all([run(args.petrel, flush, args.cycles, work) for flush in ("always", "never")])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
