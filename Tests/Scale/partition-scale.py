#!/usr/bin/env python3
"""Many partitions under the machine's default limits: creates TOPICS × 10 partitions, writes a record
to each, reads every one back, then restarts the broker cleanly and after kill -9, and reports what it
cost against the targets:

  * broker RSS under 1 GiB, open descriptors well under the process limit;
  * a full Metadata request and a metrics scrape each under 1 s;
  * restart until every partition answers (ListOffsets for all of them) under 10 s;
  * recovery after kill -9 until every partition answers under 20 s;
  * nothing acknowledged is lost: every partition holds its records after each restart.

Full size (20,000 partitions) on demand; the test suite runs it small. Bounded in time, loopback only,
ends only the broker it started.

    Tests/Scale/partition-scale.py [--topics 2000] [--petrel .build/release/petrel]
"""
import argparse
import json
import logging
import os
import sys
import tempfile
import time
import urllib.request

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec
from petrel_harness.broker_process import BrokerProcess, free_port, petrel_command

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PARTITIONS_PER_TOPIC = 10
QUIET = logging.getLogger("partition-scale-clients")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False

TARGETS = {"rss_mib": 1024, "metadata_s": 1.0, "scrape_s": 1.0, "restart_s": 10.0, "recovery_s": 20.0}


def topic_names(count):
    return [f"scale-{index:05d}" for index in range(count)]


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def open_descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def descriptor_limit(pid):
    with open(f"/proc/{pid}/limits") as limits:
        for line in limits:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return 0


def create_topics(bootstrap, names):
    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": QUIET})
    for start in range(0, len(names), 500):
        chunk = names[start:start + 500]
        futures = admin.create_topics([NewTopic(name, PARTITIONS_PER_TOPIC, 1) for name in chunk],
                                      request_timeout=120)
        for name, future in futures.items():
            future.result(120)


def produce_one_each(bootstrap, names, round_tag):
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20, "logger": QUIET,
                         "queue.buffering.max.messages": 1_000_000})
    failures = []

    def delivered(error, message):
        if error is not None:
            failures.append(str(error))
    for name in names:
        for partition in range(PARTITIONS_PER_TOPIC):
            producer.produce(name, value=f"{round_tag}-{name}-{partition}", partition=partition, on_delivery=delivered)
        producer.poll(0)
    left = producer.flush(300)
    if left or failures:
        raise SystemExit(f"FAIL: {left} records not delivered, {len(failures)} failed: {failures[:3]}")


def end_offsets(bootstrap, names, timeout):
    """ListOffsets(latest) for every partition; returns {(topic, partition): end} once all answer."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": QUIET})
    ends = {}
    deadline = time.monotonic() + timeout
    for start in range(0, len(names), 1000):
        wanted = {TopicPartition(name, p): OffsetSpec.latest()
                  for name in names[start:start + 1000] for p in range(PARTITIONS_PER_TOPIC)}
        while True:
            try:
                for tp, future in admin.list_offsets(wanted, request_timeout=60).items():
                    ends[(tp.topic, tp.partition)] = future.result(60).offset
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    return ends


def read_everything(bootstrap, names, expected):
    """Reads every partition from the start; returns how many records each holds."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "scale-reader", "enable.auto.commit": False,
                         "logger": QUIET, "fetch.wait.max.ms": 50})
    consumer.assign([TopicPartition(name, p, 0) for name in names for p in range(PARTITIONS_PER_TOPIC)])
    counts = {}
    deadline = time.monotonic() + 600
    while sum(counts.values()) < expected and time.monotonic() < deadline:
        for message in consumer.consume(10_000, 1.0):
            if message.error():
                continue
            key = (message.topic(), message.partition())
            counts[key] = counts.get(key, 0) + 1
    consumer.close()
    return counts


def timed_metadata(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": QUIET})
    started = time.monotonic()
    metadata = admin.list_topics(timeout=30)
    # The broker's own topic (__consumer_offsets) is listed too; only the test's partitions are counted.
    return time.monotonic() - started, sum(len(topic.partitions) for name, topic in metadata.topics.items()
                                           if not name.startswith("__"))


def timed_scrape(url):
    started = time.monotonic()
    body = urllib.request.urlopen(url, timeout=30).read()
    return time.monotonic() - started, len(body)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topics", type=int, default=2000, help="topics of 10 partitions (default 2000)")
    parser.add_argument("--petrel", default=os.environ.get("PETREL_BIN", os.path.join(ROOT, ".build/release/petrel")))
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--broker-arg", action="append", default=[], help="an extra broker flag (repeatable)")
    args = parser.parse_args()
    names = topic_names(args.topics)
    total = len(names) * PARTITIONS_PER_TOPIC
    figures = {"partitions": total}
    failures = []

    with tempfile.TemporaryDirectory(prefix="petrel-scale-") as tmp:
        data = os.path.join(tmp, "data")
        port, metrics_port = free_port(), free_port()
        command = petrel_command(args.petrel, data, port, "--metrics", f"127.0.0.1:{metrics_port}",
                                 "--auto-create-topics", "false", *args.broker_arg)
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        broker = BrokerProcess(command, port, os.path.join(tmp, "broker.log"))

        def check(name, value, target):
            figures[name] = round(value, 3)
            if value > target:
                failures.append(f"{name} {value:.2f} over its target {target}")

        broker.start(timeout=60)
        try:
            started = time.monotonic()
            create_topics(broker.bootstrap, names)
            figures["create_s"] = round(time.monotonic() - started, 1)
            started = time.monotonic()
            produce_one_each(broker.bootstrap, names, "first")
            figures["produce_s"] = round(time.monotonic() - started, 1)
            counts = read_everything(broker.bootstrap, names, total)
            if len(counts) != total or any(count != 1 for count in counts.values()):
                failures.append(f"read back {sum(counts.values())} records from {len(counts)} partitions, wanted {total}")
            pid = broker.process.pid
            figures["descriptor_limit"] = descriptor_limit(pid)
            figures["open_descriptors"] = open_descriptors(pid)
            check("rss_mib", rss_mib(pid), TARGETS["rss_mib"])
            seconds, seen = timed_metadata(broker.bootstrap)
            check("metadata_s", seconds, TARGETS["metadata_s"])
            if seen != total:
                failures.append(f"Metadata listed {seen} partitions, wanted {total}")
            seconds, size = timed_scrape(metrics_url)
            check("scrape_s", seconds, TARGETS["scrape_s"])
            figures["scrape_bytes"] = size

            # A clean restart: until every partition answers ListOffsets.
            broker.stop(timeout=120)
            started = time.monotonic()
            broker.start(timeout=120)
            ends = end_offsets(broker.bootstrap, names, timeout=120)
            check("restart_s", time.monotonic() - started, TARGETS["restart_s"])
            if sorted(set(ends.values())) != [1]:
                failures.append(f"after the restart, end offsets {sorted(set(ends.values()))[:5]}, wanted 1 everywhere")

            # kill -9 after a second round of writes: recovery must keep every acknowledged record.
            produce_one_each(broker.bootstrap, names, "second")
            broker.kill()
            started = time.monotonic()
            broker.start(timeout=120)
            ends = end_offsets(broker.bootstrap, names, timeout=120)
            check("recovery_s", time.monotonic() - started, TARGETS["recovery_s"])
            figures["open_descriptors_after_recovery"] = open_descriptors(broker.process.pid)
            check("rss_mib_after_recovery", rss_mib(broker.process.pid), TARGETS["rss_mib"])
            if sorted(set(ends.values())) != [2]:
                failures.append(f"after kill -9, end offsets {sorted(set(ends.values()))[:5]}, wanted 2 everywhere")
            counts = read_everything(broker.bootstrap, names, 2 * total)
            if len(counts) != total or any(count != 2 for count in counts.values()):
                failures.append(f"after kill -9 read {sum(counts.values())} records, wanted {2 * total}")
        finally:
            if broker.running:
                broker.stop(timeout=120)
    if figures.get("open_descriptors", 0) > figures.get("descriptor_limit", 1) * 0.75:
        failures.append(f"{figures['open_descriptors']} descriptors open, near the limit {figures['descriptor_limit']}")
    print(json.dumps(figures, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(figures, out, indent=2)
    if failures:
        print("FAIL: " + "; ".join(failures))
        return 1
    print(f"OK: {total} partitions: RSS {figures['rss_mib']:.0f} MiB, {figures['open_descriptors']} descriptors "
          f"(limit {figures['descriptor_limit']}), restart {figures['restart_s']:.1f} s, "
          f"recovery after kill -9 {figures['recovery_s']:.1f} s, Metadata {figures['metadata_s']:.2f} s, "
          f"scrape {figures['scrape_s']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
