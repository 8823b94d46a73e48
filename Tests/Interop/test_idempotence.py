"""librdkafka's idempotent producer: 50,000 messages, none duplicated, offsets without gaps."""
from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import create_topic

COUNT = 50_000


def test_idempotent_producer_sends_fifty_thousand_without_duplicates(broker):
    create_topic(broker, "exactly", 2)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "linger.ms": 5,
                         "max.in.flight.requests.per.connection": 5})
    failures = []
    for i in range(COUNT):
        while True:
            try:
                producer.produce("exactly", key=b"%d" % (i % 101), value=b"%d" % i,
                                 on_delivery=lambda error, _: error and failures.append(error))
                break
            except BufferError:
                producer.poll(0.05)
        if i % 2000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0
    assert failures == []

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused", "enable.auto.commit": False})
    consumer.assign([TopicPartition("exactly", p, 0) for p in (0, 1)])
    seen = []
    for _ in range(240):
        seen += [m for m in consumer.consume(5000, timeout=0.5) if not m.error()]
        if len(seen) >= COUNT:
            break
    seen += [m for m in consumer.consume(5000, timeout=1) if not m.error()]
    consumer.close()
    values = [m.value() for m in seen]
    assert len(values) == COUNT, f"{len(values) - len(set(values))} duplicates"
    assert set(values) == {b"%d" % i for i in range(COUNT)}
    for partition in (0, 1):
        offsets = [m.offset() for m in seen if m.partition() == partition]
        assert offsets == list(range(len(offsets)))
