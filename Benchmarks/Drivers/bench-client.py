#!/usr/bin/env python3
"""Client benchmark: PetrelClient (through `petrel perf`) against confluent-kafka (librdkafka), same
broker, same run, same records. Starts a release-build Petrel broker on a free loopback port with a
temporary data directory, produces then consumes N records with each client, prints a table with both
rates and their ratio, and stops everything it started. Bounded: each step has a time limit.

    Benchmarks/Drivers/bench-client.py [--records 500000] [--record-size 100]

With --baseline PATH (a petrel binary of another build), it compares the two builds' clients instead:
both run against the same broker, interleaved, --runs times each (default 5), and the table gives the
median of each and their ratio (this build / baseline).

This build is $PETREL_BIN if set, else .build/release/petrel, built first.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from petrel_harness.broker_process import BrokerProcess, free_port, petrel_command

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def confluent_produce(bootstrap, topic, records, size):
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 5, "batch.size": 65536,
                         "queue.buffering.max.messages": 1_000_000, "enable.idempotence": False})
    value = b"x" * size
    producer.produce(topic, value=value)
    producer.flush(30)
    started = time.perf_counter()
    for _ in range(records - 1):
        while True:
            try:
                producer.produce(topic, value=value)
                break
            except BufferError:
                producer.poll(0.001)
    remaining = producer.flush(120)
    seconds = time.perf_counter() - started
    assert remaining == 0, f"{remaining} records undelivered"
    return (records - 1) / seconds


def confluent_consume(bootstrap, topic, records, partitions):
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench", "enable.auto.commit": False,
                         "fetch.max.bytes": 52428800, "max.partition.fetch.bytes": 1048576})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    started = time.perf_counter()
    count = 0
    deadline = time.time() + 120
    while count < records and time.time() < deadline:
        count += sum(1 for m in consumer.consume(10000, timeout=0.5) if not m.error())
    seconds = time.perf_counter() - started
    consumer.close()
    assert count >= records, f"read {count} of {records}"
    return records / seconds


def petrel_perf(petrel, *args):
    result = subprocess.run([petrel, "perf", *args], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        sys.exit(f"petrel perf {' '.join(args)} failed: {result.stderr.strip()}")
    return json.loads(result.stdout.strip().splitlines()[-1])["records_per_second"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--record-size", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--baseline", help="a petrel binary of another build, to compare clients with")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    petrel = os.environ.get("PETREL_BIN")
    if not petrel:
        subprocess.run(["swift", "build", "-c", "release", "--product", "petrel"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        petrel = os.path.join(ROOT, ".build", "release", "petrel")
    work = tempfile.mkdtemp(prefix="petrel-bench-client-")
    port = free_port()
    broker = BrokerProcess(petrel_command(petrel, os.path.join(work, "data"), port, "--default-partitions",
                                          str(args.partitions)), port, os.path.join(work, "broker.log"))
    bootstrap = broker.bootstrap
    try:
        broker.start()
        common = ["--bootstrap", bootstrap]
        if args.baseline:
            compare_builds(petrel, args.baseline, common, args)
            return
        rows = []
        swift_produce = petrel_perf(petrel, "produce", *common, "--topic", "bench-swift", "--records", str(args.records),
                                    "--record-size", str(args.record_size), "--acks", "1")
        c_produce = confluent_produce(bootstrap, "bench-librdkafka", args.records, args.record_size)
        rows.append(("produce, acks=1", swift_produce, c_produce))
        swift_consume = petrel_perf(petrel, "consume", *common, "--topic", "bench-librdkafka", "--records", str(args.records))
        c_consume = confluent_consume(bootstrap, "bench-swift", args.records - 1, args.partitions)
        rows.append(("consume from the beginning", swift_consume, c_consume))
        print(f"\n{args.records} records of {args.record_size} B, {args.partitions} partitions, one Petrel broker (release), "
              f"{os.cpu_count()} cores shared by broker and client\n")
        print(f"| {'':28} | {'PetrelClient':>14} | {'confluent-kafka':>15} | {'ratio':>6} |")
        print(f"|{'-' * 30}|{'-' * 16}|{'-' * 17}|{'-' * 8}|")
        for name, swift, librdkafka in rows:
            print(f"| {name:28} | {swift:>10,.0f} r/s | {librdkafka:>11,.0f} r/s | {swift / librdkafka:>5.2f}x |")
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


def compare_builds(petrel, baseline, common, args):
    """This build's PetrelClient against another build's, interleaved run by run, median of each."""
    rates = {(build, step): [] for build in ("new", "baseline") for step in ("produce", "consume")}
    sized = ["--records", str(args.records)]
    for run in range(args.runs):
        order = [("new", petrel), ("baseline", baseline)]
        if run % 2:
            order.reverse()
        for build, binary in order:
            topic = f"bench-{build}-{run}"
            rates[(build, "produce")].append(petrel_perf(
                binary, "produce", *common, "--topic", topic, *sized, "--record-size", str(args.record_size),
                "--acks", "1"))
            rates[(build, "consume")].append(petrel_perf(binary, "consume", *common, "--topic", topic, *sized))
    print(f"\n{args.records} records of {args.record_size} B, {args.partitions} partitions, {args.runs} interleaved "
          f"runs per build, medians\n")
    print(f"| {'':10} | {'this build':>14} | {'baseline':>14} | {'ratio':>6} | runs (this build / baseline)")
    print(f"|{'-' * 12}|{'-' * 16}|{'-' * 16}|{'-' * 8}|")
    for step in ("produce", "consume"):
        new, old = statistics.median(rates[("new", step)]), statistics.median(rates[("baseline", step)])
        runs = " ".join(f"{a:,.0f}/{b:,.0f}" for a, b in zip(rates[("new", step)], rates[("baseline", step)]))
        print(f"| {step:10} | {new:>10,.0f} r/s | {old:>10,.0f} r/s | {new / old:>5.2f}x | {runs}")


if __name__ == "__main__":
    main()
