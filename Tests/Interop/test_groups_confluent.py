"""Consumer groups with confluent-kafka (librdkafka 2.16): subscribe, split, rebalance, commit, resume."""
import os
import signal
import subprocess
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer

from conftest import create_topic, wait_until


def produce(broker, topic, count, prefix="m", **extra):
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(count):
        producer.produce(topic, key=f"{prefix}-key-{i}".encode(), value=f"{prefix}-{i}".encode(), **extra)
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0


def consumer(broker, group, **overrides):
    config = {"bootstrap.servers": broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
              "session.timeout.ms": 6000, "heartbeat.interval.ms": 500, "enable.auto.commit": False}
    config.update(overrides)
    return Consumer(config)


def drain(consumers, want, timeout=60):
    """Polls the consumers round-robin until `want` messages arrived in total; returns them per consumer."""
    got = {id(c): [] for c in consumers}
    deadline = time.time() + timeout
    while sum(len(v) for v in got.values()) < want and time.time() < deadline:
        for c in consumers:
            for message in c.consume(500, timeout=0.1):
                if message.error():
                    raise KafkaException(message.error())
                got[id(c)].append(message)
    return got


def test_subscribe_reads_ten_thousand_exactly_once(broker):
    create_topic(broker, "orders", 3)
    produce(broker, "orders", 10_000)
    worker = consumer(broker, "order-workers")
    worker.subscribe(["orders"])
    try:
        messages = drain([worker], 10_000)[id(worker)]
        # Nothing more arrives: every message came exactly once.
        messages += [m for m in worker.consume(1000, timeout=2) if not m.error()]
    finally:
        worker.close()
    values = [m.value() for m in messages]
    assert len(values) == 10_000
    assert set(values) == {f"m-{i}".encode() for i in range(10_000)}
    for partition in range(3):
        offsets = [m.offset() for m in messages if m.partition() == partition]
        assert offsets == list(range(len(offsets)))


def test_edge_values_survive_a_subscribe_round_trip(broker):
    create_topic(broker, "edges", 1)
    big = os.urandom(200 * 1024)
    binary = bytes(range(256))
    producer = Producer({"bootstrap.servers": broker.bootstrap, "message.max.bytes": 1_000_000})
    producer.produce("edges", key=None, value=b"null key")
    producer.produce("edges", key=b"empty", value=b"")
    producer.produce("edges", key=b"binary", value=binary)
    producer.produce("edges", key=b"big", value=big)
    producer.produce("edges", key=b"headers", value=b"h", headers=[("trace", b"abc"), ("none", None), ("bin", b"\x00\xff")])
    assert producer.flush(30) == 0
    worker = consumer(broker, "edge-readers")
    worker.subscribe(["edges"])
    try:
        got = drain([worker], 5)[id(worker)]
    finally:
        worker.close()
    assert [m.key() for m in got] == [None, b"empty", b"binary", b"big", b"headers"]
    assert got[0].value() == b"null key"
    assert got[1].value() in (b"", None)
    assert got[2].value() == binary
    assert got[3].value() == big
    assert got[4].headers() == [("trace", b"abc"), ("none", None), ("bin", b"\x00\xff")]


def test_two_consumers_split_partitions_and_one_takes_over(broker):
    create_topic(broker, "split", 4)
    produce(broker, "split", 2000, prefix="first")
    a, b = consumer(broker, "splitters"), consumer(broker, "splitters")
    a.subscribe(["split"])
    b.subscribe(["split"])
    try:
        got = drain([a, b], 2000)
        assert all(got.values()), "each consumer should have had a share"
        values = [m.value() for ms in got.values() for m in ms]
        assert sorted(values) == sorted(f"first-{i}".encode() for i in range(2000))
        wait_until(lambda: len(a.assignment()) + len(b.assignment()) == 4 and a.assignment() and b.assignment(),
                   what="both consumers assigned")
        assert {p.partition for p in a.assignment()}.isdisjoint({p.partition for p in b.assignment()})
        a.commit(asynchronous=False)
        b.commit(asynchronous=False)

        a.close()  # LeaveGroup: b is assigned everything at once
        def b_has_all():
            b.poll(0.1)
            return len(b.assignment()) == 4
        wait_until(b_has_all, timeout=30, what="the survivor to own all four partitions")
        produce(broker, "split", 400, prefix="second")
        after = drain([b], 400)[id(b)]
        assert sorted(m.value() for m in after) == sorted(f"second-{i}".encode() for i in range(400))
    finally:
        b.close()


def test_commit_then_resume_exactly_after_the_commit(broker):
    create_topic(broker, "resume", 2)
    produce(broker, "resume", 1000)
    first = consumer(broker, "resumers")
    first.subscribe(["resume"])
    seen = []
    deadline = time.time() + 60
    while len(seen) < 500 and time.time() < deadline:
        for message in first.consume(50, timeout=0.5):
            assert not message.error()
            seen.append(message)
            if len(seen) == 500:
                break
    first.commit(asynchronous=False)  # commits the position after the 500th message of each partition
    first.close()

    second = consumer(broker, "resumers")
    second.subscribe(["resume"])
    try:
        rest = drain([second], 500)[id(second)]
        rest += [m for m in second.consume(1000, timeout=2) if not m.error()]
    finally:
        second.close()
    assert len(seen) + len(rest) == 1000, "no gap and no re-delivery"
    assert {m.value() for m in seen}.isdisjoint({m.value() for m in rest})
    for partition in (0, 1):
        before = [m.offset() for m in seen if m.partition() == partition]
        after = [m.offset() for m in rest if m.partition() == partition]
        if before and after:
            assert after[0] == before[-1] + 1


KILLABLE_CONSUMER = r"""
import sys, time
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2], "session.timeout.ms": 3000,
              "heartbeat.interval.ms": 300, "auto.offset.reset": "earliest"})
c.subscribe([sys.argv[3]])
while True:
    c.poll(0.2)
    if c.assignment():
        print("assigned", flush=True)
"""


def test_a_killed_member_is_evicted_after_its_session_timeout(broker):
    create_topic(broker, "evict", 4)
    victim = subprocess.Popen([sys.executable, "-c", KILLABLE_CONSUMER, broker.bootstrap, "evictees", "evict"],
                              stdout=subprocess.PIPE, text=True)
    survivor = consumer(broker, "evictees", **{"session.timeout.ms": 3000, "max.poll.interval.ms": 10000})
    survivor.subscribe(["evict"])
    # The survivor must keep polling while the victim starts: librdkafka hands partitions back (and so
    # rejoins) only from poll().
    victim_assigned = threading.Event()
    threading.Thread(target=lambda: victim.stdout.readline().strip() == "assigned" and victim_assigned.set(),
                     daemon=True).start()
    try:
        def victim_ready():
            survivor.poll(0.1)
            return victim_assigned.is_set()
        wait_until(victim_ready, timeout=30, what="the victim to be assigned partitions")

        def split():
            survivor.poll(0.1)
            return 0 < len(survivor.assignment()) < 4
        wait_until(split, timeout=30, what="the two members to share the partitions")
        victim.send_signal(signal.SIGKILL)  # no LeaveGroup
        victim.wait(10)
        killed_at = time.time()

        def survivor_has_all():
            survivor.poll(0.1)
            return len(survivor.assignment()) == 4
        wait_until(survivor_has_all, timeout=30, what="the survivor to take over after the session timeout")
        # Not before the 3 s session timeout ran out (minus scheduling slack).
        assert time.time() - killed_at > 2.0
    finally:
        if victim.poll() is None:
            victim.kill()
        survivor.close()


def test_cooperative_sticky_assignment(broker):
    create_topic(broker, "sticky", 4)
    produce(broker, "sticky", 800)
    settings = {"partition.assignment.strategy": "cooperative-sticky"}
    a = consumer(broker, "cooperative", **settings)
    a.subscribe(["sticky"])
    try:
        first = drain([a], 400)[id(a)]
        b = consumer(broker, "cooperative", **settings)
        b.subscribe(["sticky"])
        try:
            got = drain([a, b], 800 - len(first))
            values = [m.value() for m in first] + [m.value() for ms in got.values() for m in ms]
            assert len(set(values)) == 800

            def shared():
                a.poll(0.1)
                b.poll(0.1)
                return len(a.assignment()) + len(b.assignment()) == 4 and a.assignment() and b.assignment()
            wait_until(shared, timeout=30, what="an incremental rebalance to share the partitions")
        finally:
            b.close()
    finally:
        a.close()
