"""PetrelClient against librdkafka, both ways, through the petrel CLI (which is built on PetrelClient):
records produced by one are read exactly by the other, and keyed records land on the partition Java's
partitioner (murmur2) picks."""
import json
import subprocess

from confluent_kafka import Consumer, Producer, TopicPartition
from kafka.partitioner.default import murmur2

from conftest import PETREL, create_topic


def java_partition(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def test_petrel_produce_is_read_exactly_by_confluent_kafka(broker):
    create_topic(broker, "from-petrel", 6)
    lines = "".join(f"order-{i}:{{\"order\":{i}}}\n" for i in range(300))
    # A null key too: a line without the separator has no key.
    lines += "keyless line\n"
    result = subprocess.run(
        [PETREL, "produce", "--bootstrap", broker.bootstrap, "--topic", "from-petrel", "--key-separator", ":",
         "--compression", "gzip", "--header", "source=petrel", "--header", "event=order-created"],
        input=lines.encode(), capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert b"produced 301 of 301 records" in result.stderr

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused", "enable.auto.commit": False})
    consumer.assign([TopicPartition("from-petrel", p, 0) for p in range(6)])
    got = []
    for _ in range(60):
        got += [m for m in consumer.consume(500, timeout=0.5) if not m.error()]
        if len(got) >= 301:
            break
    consumer.close()
    assert len(got) == 301
    keyed = [m for m in got if m.key() is not None]
    assert sorted(m.value() for m in keyed) == sorted(b'{"order":%d}' % i for i in range(300))
    for message in keyed:
        assert message.partition() == java_partition(message.key(), 6), message.key()
        assert message.headers() == [("source", b"petrel"), ("event", b"order-created")]
    keyless = [m for m in got if m.key() is None]
    assert [m.value() for m in keyless] == [b"keyless line"]


def test_confluent_kafka_produce_is_read_exactly_by_petrel(broker):
    create_topic(broker, "from-librdkafka", 3)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": "gzip",
                         "partitioner": "murmur2_random", "linger.ms": 20})
    sent = []
    for i in range(200):
        key = None if i % 10 == 0 else b"customer-%d" % (i % 7)
        value = b"" if i % 25 == 0 else ("örder %d ✓" % i).encode()
        headers = [("n", b"%d" % i)] + ([("empty", None)] if i % 2 else [])
        producer.produce("from-librdkafka", key=key, value=value, headers=headers)
        sent.append((key, value, headers))
    assert producer.flush(30) == 0

    result = subprocess.run(
        [PETREL, "consume", "--bootstrap", broker.bootstrap, "--topic", "from-librdkafka", "--from-beginning",
         "--max-messages", "200", "--format", "json"],
        capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert b"consumed 200 records" in result.stderr
    rows = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(rows) == 200
    assert all(set(row) == {"topic", "partition", "offset", "timestamp", "key", "value", "headers"} for row in rows)
    by_n = {int(row["headers"]["n"]): row for row in rows}
    for i, (key, value, headers) in enumerate(sent):
        row = by_n[i]
        assert row["key"] == (key.decode() if key is not None else None)
        assert row["value"] == value.decode()
        assert ("empty" in row["headers"]) == (i % 2 == 1)
        if key is not None:
            assert row["partition"] == java_partition(key, 3), "librdkafka's murmur2_random agrees with Java and Petrel"
    per_partition = {}
    for row in rows:
        per_partition.setdefault(row["partition"], []).append(row["offset"])
    for offsets in per_partition.values():
        assert sorted(offsets) == list(range(len(offsets)))


def test_cli_reports_bad_arguments_and_unreachable_brokers():
    unreachable = subprocess.run([PETREL, "consume", "--bootstrap", "127.0.0.1:1", "--topic", "t"],
                                 capture_output=True, text=True, timeout=30)
    assert unreachable.returncode != 0
    assert unreachable.stderr.strip().startswith("petrel: cannot read topic t: cannot connect to 127.0.0.1:1")
    assert len(unreachable.stderr.strip().splitlines()) == 1
    bad = subprocess.run([PETREL, "produce", "--topic", "bad name!"], capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0
    assert "not a legal topic name" in bad.stderr
