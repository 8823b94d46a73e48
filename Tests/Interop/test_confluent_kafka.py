"""confluent-kafka (librdkafka 2.16) against the broker."""
import hashlib
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

MESSAGES = 10_000


def checksum(pairs):
    digest = hashlib.sha256()
    for key, value in sorted(pairs):
        digest.update(key + b"\0" + value + b"\n")
    return digest.hexdigest()


def read_assigned(bootstrap, topic, partitions, expected, timeout=60):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    received = []
    deadline = time.time() + timeout
    try:
        while len(received) < expected and time.time() < deadline:
            for message in consumer.consume(1000, timeout=1):
                if message.error():
                    raise KafkaException(message.error())
                received.append(message)
    finally:
        consumer.close()
    return received


def test_admin_producer_acks_all_and_assigned_consumer(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("orders", num_partitions=3, replication_factor=1)])["orders"].result(30)
    metadata = admin.list_topics("orders", timeout=10)
    assert len(metadata.topics["orders"].partitions) == 3

    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 5})
    sent = []
    failures = []

    def delivered(error, message):
        if error:
            failures.append(error)

    for i in range(MESSAGES):
        key, value = f"order-{i}".encode(), f"created:{i}:{'x' * (i % 50)}".encode()
        sent.append((key, value))
        producer.produce("orders", key=key, value=value, on_delivery=delivered)
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    assert failures == []

    received = read_assigned(broker.bootstrap, "orders", 3, MESSAGES)
    assert len(received) == MESSAGES
    assert checksum((m.key(), m.value()) for m in received) == checksum(sent)
    for partition in range(3):
        offsets = [m.offset() for m in received if m.partition() == partition]
        assert offsets == list(range(len(offsets))), f"partition {partition} has gaps or duplicates"
        assert offsets, f"partition {partition} got nothing"


def test_headers_null_keys_and_empty_values(broker):
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    producer.produce("edges", key=None, value=b"", headers=[("h", b"1"), ("empty", None)])
    producer.produce("edges", key=b"\x00\xff", value=bytes(range(256)) * 100)
    assert producer.flush(30) == 0
    got = read_assigned(broker.bootstrap, "edges", 1, 2)
    assert [m.key() for m in got] == [None, b"\x00\xff"]
    assert got[0].value() in (b"", None)
    assert got[0].headers() == [("h", b"1"), ("empty", None)]
    assert got[1].value() == bytes(range(256)) * 100


def test_list_offsets_and_watermarks(broker):
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(25):
        producer.produce("marks", value=b"%d" % i)
    producer.flush(30)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused"})
    try:
        assert consumer.get_watermark_offsets(TopicPartition("marks", 0), timeout=10) == (0, 25)
    finally:
        consumer.close()


def test_offsets_for_times(broker):
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 50})
    base = 1_700_000_000_000
    # Two batches whose records interleave in time with nothing: 0-4 at base+0..4 s, 5-9 at base+10..14 s.
    for i in range(10):
        producer.produce("times", value=b"%d" % i, timestamp=base + (i if i < 5 else i + 5) * 1000)
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused"})
    try:
        def lookup(timestamp):
            return consumer.offsets_for_times([TopicPartition("times", 0, timestamp)], timeout=10)[0].offset

        assert lookup(base) == 0
        assert lookup(base + 2500) == 3          # inside a batch: the exact record, not the batch start
        assert lookup(base + 4001) == 5          # the gap: the first record after it
        assert lookup(base + 14_000) == 9
        assert lookup(base + 14_001) == -1       # past the last record: the end offset (-1, "latest")
    finally:
        consumer.close()
