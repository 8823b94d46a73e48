"""A full disk: the broker's data directory on a 24 MiB tmpfs (mounted by the test; it needs root, as
the suite's machines give it, and fails loudly without). Writes past the space answer
KAFKA_STORAGE_ERROR and nothing acknowledged is lost; committing offsets fails cleanly and corrupts
nothing; deleting a topic frees space and writes succeed again at once, without a restart (Kafka takes
the log directory offline until one); the free-space gauge shows it; after a restart every acknowledged
record and committed offset is there."""
import os
import subprocess
import tempfile
import time
import urllib.request

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from conftest import BrokerProcess, free_port, wait_until


@pytest.fixture
def small_disk():
    with tempfile.TemporaryDirectory(prefix="petrel-disk-full-") as mount_point:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mount_point],
                                capture_output=True, text=True)
        assert result.returncode == 0, f"cannot mount a small tmpfs for the disk-full test: {result.stderr}"
        try:
            yield mount_point
        finally:
            subprocess.run(["umount", "-l", mount_point], check=False)


def produce(bootstrap, topic, values):
    """Sends values with acks=all; returns (acknowledged values, error codes of the rest)."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "retries": 0, "linger.ms": 5,
                         "message.timeout.ms": 10_000})
    acked, errors = [], []

    def delivered(error, message):
        if error is None:
            acked.append(message.value().decode())
        else:
            errors.append(error.code())
    for index, value in enumerate(values):
        producer.produce(topic, value=value, on_delivery=delivered)
        if index % 500 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    return acked, errors


def read_all(bootstrap, topic):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "disk-full-reader", "enable.auto.commit": False})
    high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)[1]
    consumer.assign([TopicPartition(topic, 0, 0)])
    values = []
    deadline = time.time() + 60
    while len(values) < high and time.time() < deadline:
        for message in consumer.consume(1000, 1.0):
            if not message.error():
                values.append(message.value().decode())
    consumer.close()
    return values


def scrape(url, name):
    for line in urllib.request.urlopen(url, timeout=10).read().decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def commit(bootstrap, group, offset):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition("orders", 0, offset)], asynchronous=False)
        return None
    except Exception as error:  # the commit's error is what is checked
        return error
    finally:
        consumer.close()


def committed(bootstrap, group):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    [tp] = consumer.committed([TopicPartition("orders", 0)], timeout=30)
    consumer.close()
    return tp.offset


def test_a_full_disk_refuses_writes_loses_nothing_and_recovers_when_space_is_freed(small_disk):
    metrics_port = free_port()
    data = os.path.join(small_disk, "data")
    broker = BrokerProcess(data, ["--segment-bytes", "1048576", "--metrics", f"127.0.0.1:{metrics_port}"]).start()
    metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        for topic in ("filler", "orders"):
            admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
        first_orders, _ = produce(broker.bootstrap, "orders", [f"order-{i}" for i in range(100)])
        assert len(first_orders) == 100
        assert commit(broker.bootstrap, "workers", 50) is None

        # Fill the disk: the tail of the writes is refused with KAFKA_STORAGE_ERROR, never half-taken.
        filler_acked, filler_errors = produce(broker.bootstrap, "filler", ["x" * 1000] * 40_000)
        assert filler_errors and set(filler_errors) == {KafkaError.KAFKA_STORAGE_ERROR}, set(filler_errors)
        assert 0 < len(filler_acked) < 40_000
        assert scrape(metrics, "petrel_data_dir_free_bytes") < 1 << 20
        # The broker still answers, and a commit either lands or fails cleanly.
        assert admin.list_topics(timeout=10).topics["orders"]
        commit(broker.bootstrap, "workers", 60)

        # Deleting a topic frees its space: writes are taken again, with no restart.
        admin.delete_topics(["filler"])["filler"].result(30)
        wait_until(lambda: scrape(metrics, "petrel_data_dir_free_bytes") > 16 << 20, timeout=20,
                   what="the deleted topic's space freed")
        later_orders, errors = produce(broker.bootstrap, "orders", [f"later-{i}" for i in range(100)])
        assert not errors and len(later_orders) == 100
        assert commit(broker.bootstrap, "workers", 200) is None
        assert read_all(broker.bootstrap, "orders")[:100] == first_orders
    finally:
        code = broker.stop()
        assert code == 0 or code is None, f"broker exited with {code}:\n{broker.log()}"
    # After a restart (kill -9 this time) every acknowledged record and the last committed offset are there.
    broker = BrokerProcess(data, ["--segment-bytes", "1048576"]).start()
    try:
        values = read_all(broker.bootstrap, "orders")
        assert set(first_orders + later_orders) <= set(values)
        assert committed(broker.bootstrap, "workers") == 200
        broker.kill()
        broker = BrokerProcess(data, ["--segment-bytes", "1048576"]).start()
        assert set(first_orders + later_orders) <= set(read_all(broker.bootstrap, "orders"))
        assert committed(broker.bootstrap, "workers") == 200
    finally:
        broker.stop()
