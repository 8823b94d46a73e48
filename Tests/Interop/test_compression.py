"""Compressed batches from librdkafka (gzip, snappy, lz4, zstd) and kafka-python (gzip), stored as they
arrived and read back by librdkafka, kafka-python and kcat."""
import subprocess

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as PyTopicPartition

COUNT = 300


def expected_values():
    return [f"order {i} " * (1 + i % 5) for i in range(COUNT)]


def read_with_confluent(broker, topic):
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    values = []
    for _ in range(60):
        values += [m.value().decode() for m in consumer.consume(1000, timeout=0.5) if not m.error()]
        if len(values) >= COUNT:
            break
    consumer.close()
    return values


def read_with_kafka_python(broker, topic):
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, consumer_timeout_ms=3000)
    consumer.assign([PyTopicPartition(topic, 0)])
    consumer.seek_to_beginning()
    values = [record.value.decode() for record in consumer]
    consumer.close()
    return values


def read_with_kcat(broker, topic):
    out = subprocess.run(["kcat", "-b", broker.bootstrap, "-C", "-t", topic, "-e", "-f", "%s\n"],
                         capture_output=True, timeout=60, check=True).stdout.decode()
    return out.splitlines()


def stored_codec(broker, topic):
    """The codec bits of the first stored batch, read straight from the segment file."""
    with open(f"{broker.data_dir}/{topic}-0/00000000000000000000.log", "rb") as segment:
        header = segment.read(61)
    return int.from_bytes(header[21:23], "big") & 0x07


CODECS = {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


@pytest.mark.parametrize("codec", list(CODECS))
def test_librdkafka_codecs_round_trip_through_every_client(broker, codec):
    topic = f"packed-{codec}"
    producer = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": codec, "linger.ms": 100})
    for value in expected_values():
        producer.produce(topic, value=value.encode())
    assert producer.flush(30) == 0
    assert stored_codec(broker, topic) == CODECS[codec], "batches are stored as they arrived, not recompressed"
    assert read_with_confluent(broker, topic) == expected_values()
    assert read_with_kafka_python(broker, topic) == expected_values()
    assert read_with_kcat(broker, topic) == [v for v in expected_values()]


def test_kafka_python_gzip_round_trips_through_every_client(broker):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, compression_type="gzip", linger_ms=100)
    for value in expected_values():
        producer.send("py-gzip", value=value.encode())
    producer.flush(30)
    producer.close()
    assert stored_codec(broker, "py-gzip") == 1
    assert read_with_confluent(broker, "py-gzip") == expected_values()
    assert read_with_kafka_python(broker, "py-gzip") == expected_values()
    assert read_with_kcat(broker, "py-gzip") == expected_values()
