"""kafka-python's and aiokafka's transactional producers commit and abort against the broker, and
kafka-python's admin client lists and describes transactions and the producers of a partition."""
import asyncio
import os
import tempfile

import pytest
from conftest import BrokerProcess
from test_transactions import TRANSACTION_ARGS, create, read


@pytest.fixture
def txn_broker():
    with tempfile.TemporaryDirectory(prefix="petrel-txn-") as tmp:
        process = BrokerProcess(os.path.join(tmp, "data"), TRANSACTION_ARGS).start()
        try:
            yield process
        finally:
            assert process.stop() == 0, process.log_tail()


def test_kafka_python_transactional_producer_commits_and_aborts(txn_broker):
    from kafka import KafkaProducer
    create(txn_broker.bootstrap, "py-tx", partitions=2)
    producer = KafkaProducer(bootstrap_servers=txn_broker.bootstrap, transactional_id="py-writer")
    producer.init_transactions()
    producer.begin_transaction()
    for i in range(10):
        producer.send("py-tx", key=b"k%d" % i, value=b"committed-%d" % i)
    producer.commit_transaction()
    producer.begin_transaction()
    for i in range(10):
        producer.send("py-tx", key=b"k%d" % i, value=b"aborted-%d" % i)
    producer.flush()
    producer.abort_transaction()
    producer.close()
    assert sorted(read(txn_broker.bootstrap, "py-tx", "read_committed", partitions=2)) == sorted(
        f"committed-{i}" for i in range(10))
    assert len(read(txn_broker.bootstrap, "py-tx", "read_uncommitted", partitions=2)) == 20


def test_aiokafka_transactional_producer_commits_and_aborts(txn_broker):
    from aiokafka import AIOKafkaProducer
    create(txn_broker.bootstrap, "aio-tx")

    async def run():
        producer = AIOKafkaProducer(bootstrap_servers=txn_broker.bootstrap, transactional_id="aio-writer")
        await producer.start()
        try:
            async with producer.transaction():
                for i in range(10):
                    await producer.send("aio-tx", value=b"committed-%d" % i)
            with pytest.raises(RuntimeError):
                async with producer.transaction():
                    for i in range(10):
                        await producer.send("aio-tx", value=b"aborted-%d" % i)
                    await producer.flush()
                    raise RuntimeError("abort this one")
        finally:
            await producer.stop()

    asyncio.run(run())
    assert read(txn_broker.bootstrap, "aio-tx", "read_committed") == [f"committed-{i}" for i in range(10)]
    assert len(read(txn_broker.bootstrap, "aio-tx", "read_uncommitted")) == 20


def test_kafka_python_admin_lists_and_describes_transactions_and_producers(txn_broker):
    from confluent_kafka import Producer
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient
    create(txn_broker.bootstrap, "hunted")
    done = Producer({"bootstrap.servers": txn_broker.bootstrap, "transactional.id": "finished-writer"})
    done.init_transactions(30)
    done.begin_transaction()
    done.produce("hunted", value="ok")
    done.commit_transaction(30)
    hung = Producer({"bootstrap.servers": txn_broker.bootstrap, "transactional.id": "hung-writer"})
    hung.init_transactions(30)
    hung.begin_transaction()
    hung.produce("hunted", value="stuck")
    hung.flush(30)

    admin = KafkaAdminClient(bootstrap_servers=txn_broker.bootstrap)
    try:
        # Listed by coordinator (this broker, node 1), every transactional id in any state.
        listed = {t.transactional_id: t for t in admin.list_transactions()[1]}
        assert set(listed) == {"finished-writer", "hung-writer"}
        assert listed["hung-writer"].state.value == "Ongoing"
        assert listed["finished-writer"].state.value == "CompleteCommit"
        ongoing = admin.list_transactions(state_filters=["Ongoing"])[1]
        assert [t.transactional_id for t in ongoing] == ["hung-writer"]
        description = admin.describe_transactions(["hung-writer"])["hung-writer"]
        assert description.state.value == "Ongoing" and description.transaction_start_time_ms > 0
        assert description.topic_partitions == {TopicPartition("hunted", 0)}
        assert description.producer_id == listed["hung-writer"].producer_id
        partition = admin.describe_producers([TopicPartition("hunted", 0)])[TopicPartition("hunted", 0)]
        states = {p.producer_id: p for p in partition.active_producers}
        # The hung producer's open transaction starts at offset 2 (after the first's record and marker).
        assert states[listed["hung-writer"].producer_id].current_transaction_start_offset == 2
        assert states[listed["finished-writer"].producer_id].current_transaction_start_offset == -1
        # Its coordinator knows it: not a hanging transaction in kafka-python's sense.
        assert admin.find_hanging_transactions() == []
    finally:
        admin.close()
    hung.abort_transaction(30)
