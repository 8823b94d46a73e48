"""kafka-python 3.0 (idempotent producer by default) against the broker."""
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic


def test_idempotent_produce_then_consume_from_beginning(broker):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    futures = [producer.send("py-orders", key=b"k%d" % i, value=b"order %d" % i, headers=[("n", b"%d" % i)])
               for i in range(500)]
    producer.flush(30)
    offsets = [future.get(timeout=10).offset for future in futures]
    assert offsets == list(range(500))
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, consumer_timeout_ms=5000)
    partition = TopicPartition("py-orders", 0)
    consumer.assign([partition])
    consumer.seek_to_beginning()
    records = []
    for record in consumer:
        records.append(record)
        if len(records) == 500:
            break
    consumer.close()
    assert [r.offset for r in records] == list(range(500))
    assert [r.value for r in records] == [b"order %d" % i for i in range(500)]
    assert [dict(r.headers)["n"] for r in records] == [b"%d" % i for i in range(500)]


def test_admin_creates_and_deletes_topics(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        admin.create_topics([NewTopic("py-admin", 4, 1, topic_configs={"retention.ms": "3600000"})])
        assert "py-admin" in admin.list_topics()
        described = admin.describe_topics(["py-admin"])
        assert len(described[0]["partitions"]) == 4
        admin.delete_topics(["py-admin"])
        assert "py-admin" not in admin.list_topics()
    finally:
        admin.close()


def test_offsets_for_times_and_end_offsets(broker):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for i in range(10):
        producer.send("py-times", value=b"%d" % i, timestamp_ms=1_700_000_000_000 + i * 1000)
    producer.flush(30)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    partition = TopicPartition("py-times", 0)
    try:
        found = consumer.offsets_for_times({partition: 1_700_000_004_500})[partition]
        assert (found.offset, found.timestamp) == (5, 1_700_000_005_000)
        assert consumer.offsets_for_times({partition: 1_800_000_000_000})[partition] is None
        assert consumer.end_offsets([partition])[partition] == 10
        assert consumer.beginning_offsets([partition])[partition] == 0
    finally:
        consumer.close()
