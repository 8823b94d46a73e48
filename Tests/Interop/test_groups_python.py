"""Consumer groups with kafka-python and aiokafka, lag as `petrel groups describe` shows it, and a
group surviving a broker crash."""
import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, Producer
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from conftest import create_topic, petrel


def describe_rows(broker, group):
    """The partition table of `petrel groups describe`: {(topic, partition): (committed, log_end, lag)}."""
    out = petrel("groups", "describe", group, "--bootstrap", broker.bootstrap)
    lines = out.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("TOPIC")))
    rows = {}
    for line in lines[header + 1:]:
        topic, partition, committed, end, lag = line.split()
        rows[(topic, int(partition))] = (committed, int(end), lag)
    return out, rows


def test_kafka_python_manual_commit_lag_matches_describe(broker):
    create_topic(broker, "py-lag", 2)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for i in range(100):
        producer.send("py-lag", value=b"%d" % i, partition=i % 2)
    producer.flush(30)
    producer.close()

    consumer = KafkaConsumer("py-lag", bootstrap_servers=broker.bootstrap, group_id="py-workers",
                             enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=7)
    read = 0
    deadline = time.time() + 60
    while read < 60 and time.time() < deadline:
        read += sum(len(records) for records in consumer.poll(500).values())
    consumer.commit()
    partitions = [TopicPartition("py-lag", 0), TopicPartition("py-lag", 1)]
    committed = {tp.partition: consumer.committed(tp) for tp in partitions}
    ends = {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    expected_lag = {p: ends[p] - committed[p] for p in (0, 1)}
    assert sum(expected_lag.values()) == 100 - read

    out, rows = describe_rows(broker, "py-workers")
    assert "STATE Stable" in out and "MEMBERS 1" in out
    assert "py-lag:0,1" in out, out
    for p in (0, 1):
        assert rows[("py-lag", p)] == (str(committed[p]), ends[p], str(expected_lag[p])), out
    consumer.close(autocommit=False)

    # Without members the committed offsets and lag are still shown.
    out, rows_after = describe_rows(broker, "py-workers")
    assert "(no active members)" in out
    assert rows_after == rows
    assert "py-workers" in petrel("groups", "list", "--bootstrap", broker.bootstrap)


def test_aiokafka_group_consumer(broker):
    async def run():
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        try:
            for i in range(60):
                await producer.send_and_wait("aio-group", value=b"v%d" % i)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer("aio-group", bootstrap_servers=broker.bootstrap, group_id="aio-workers",
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        try:
            values = []
            while len(values) < 60:
                batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
                values += [m.value for messages in batch.values() for m in messages]
            await consumer.commit()
            committed = await consumer.committed(next(iter(consumer.assignment())))
        finally:
            await consumer.stop()
        assert sorted(values) == sorted(b"v%d" % i for i in range(60))
        assert committed == 60

    asyncio.run(asyncio.wait_for(run(), 120))


def test_group_survives_a_broker_kill(broker):
    create_topic(broker, "crashy", 2)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    for i in range(300):
        producer.produce("crashy", value=b"before-%d" % i, key=b"%d" % i)
    assert producer.flush(30) == 0
    settings = {"bootstrap.servers": broker.bootstrap, "group.id": "crash-survivors", "auto.offset.reset": "earliest",
                "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                "reconnect.backoff.max.ms": 500}
    consumer = Consumer(settings)
    consumer.subscribe(["crashy"])
    try:
        seen = []
        deadline = time.time() + 60
        while len(seen) < 300 and time.time() < deadline:
            seen += [m.value() for m in consumer.consume(100, timeout=0.5) if not m.error()]
        consumer.commit(asynchronous=False)
        before = {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(consumer.assignment(), timeout=10)}
        assert sum(before.values()) == 300

        broker.kill()
        broker.start()

        # The committed offsets are intact...
        _, rows = describe_rows(broker, "crash-survivors")
        assert {key: int(value[0]) for key, value in rows.items()} == before
        # ...and the consumer rejoins on its own and carries on with new records, without re-reading old ones.
        for i in range(100):
            producer.produce("crashy", value=b"after-%d" % i, key=b"%d" % i)
        assert producer.flush(30) == 0
        after = []
        deadline = time.time() + 60
        while len(after) < 100 and time.time() < deadline:
            after += [m.value() for m in consumer.consume(100, timeout=0.5) if not m.error()]
        assert sorted(after) == sorted(b"after-%d" % i for i in range(100))
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
