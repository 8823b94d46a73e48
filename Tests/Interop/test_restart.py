"""Acknowledged records survive the broker stopping, gracefully or by kill -9 (flush policy never:
the page cache keeps what a killed process wrote)."""
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition


def produce_acknowledged(bootstrap, topic, count):
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    acked = {}

    def delivered(error, message):
        if error is None:
            acked[message.value()] = (message.partition(), message.offset())

    for i in range(count):
        producer.produce(topic, key=b"k%d" % (i % 13), value=b"%s-%d" % (topic.encode(), i), on_delivery=delivered)
    assert producer.flush(60) == 0
    return acked


def read_everything(bootstrap, topic, partitions, expected):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    found = {}
    try:
        for _ in range(120):
            for message in consumer.consume(1000, timeout=0.5):
                assert not message.error(), message.error()
                found[message.value()] = (message.partition(), message.offset())
            if len(found) >= expected:
                break
    finally:
        consumer.close()
    return found


@pytest.mark.parametrize("how", ["graceful", "kill -9"])
def test_acknowledged_records_survive_a_restart(broker, how):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("durable", num_partitions=2, replication_factor=1)])["durable"].result(30)
    acked = produce_acknowledged(broker.bootstrap, "durable", 2000)
    assert len(acked) == 2000
    if how == "graceful":
        broker.stop()
    else:
        broker.kill()
    broker.start()
    found = read_everything(broker.bootstrap, "durable", 2, len(acked))
    assert found == acked
    # New records continue after the old ones.
    more = produce_acknowledged(broker.bootstrap, "durable", 10)
    for partition in (0, 1):
        old = [offset for p, offset in acked.values() if p == partition]
        new = [offset for p, offset in more.values() if p == partition]
        if new:
            assert min(new) == max(old) + 1
