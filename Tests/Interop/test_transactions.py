"""Transactions with confluent-kafka (librdkafka): what read_committed and read_uncommitted readers see of
committed, aborted and open transactions; fencing by a second producer; a producer that dies mid-transaction
aborted after its timeout; an exactly-once consume-transform-produce worker killed mid-transaction; the
broker killed with -9 mid-transaction."""
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from conftest import BrokerProcess, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
# Short transaction timeouts need the coordinator to look for them often.
TRANSACTION_ARGS = ["--transaction-timeout-check-interval-ms", "200"]


@pytest.fixture
def txn_broker():
    with tempfile.TemporaryDirectory(prefix="petrel-txn-") as tmp:
        process = BrokerProcess(os.path.join(tmp, "data"), TRANSACTION_ARGS).start()
        try:
            yield process
        finally:
            assert process.stop() == 0, process.log_tail()


def create(bootstrap, *topics, partitions=1):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(t, partitions, 1) for t in topics]).values():
        future.result(30)


def transactional_producer(bootstrap, transactional_id, **extra):
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id, **extra})
    producer.init_transactions(30)
    return producer


def read(bootstrap, topic, isolation, partitions=1, idle_polls=4):
    """Every record a fresh reader with `isolation` gets, to the end of every partition: values in order."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{isolation}-{time.time()}",
                         "isolation.level": isolation, "auto.offset.reset": "earliest",
                         "enable.partition.eof": True, "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    values, ends, idle = [], set(), 0
    deadline = time.time() + 30
    try:
        while time.time() < deadline and (len(ends) < partitions or idle < idle_polls):
            message = consumer.poll(0.25)
            if message is None:
                idle += 1
                continue
            idle = 0
            if message.error():
                assert message.error().code() == KafkaError._PARTITION_EOF, message.error()
                ends.add(message.partition())
                continue
            values.append(message.value().decode())
    finally:
        consumer.close()
    return values


def committed_end(bootstrap, topic, partition=0):
    """The end offset a read_committed consumer is told: the partition's last stable offset."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "lso", "isolation.level": "read_committed"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
    finally:
        consumer.close()


def test_read_committed_sees_committed_transactions_only(txn_broker):
    bootstrap = txn_broker.bootstrap
    create(bootstrap, "payments", partitions=2)
    producer = transactional_producer(bootstrap, "payments-writer")
    producer.begin_transaction()
    for i in range(20):
        producer.produce("payments", key=f"k{i}", value=f"committed-{i}")
    producer.commit_transaction(30)
    producer.begin_transaction()
    for i in range(20):
        producer.produce("payments", key=f"k{i}", value=f"aborted-{i}")
    producer.flush(30)
    producer.abort_transaction(30)
    producer.begin_transaction()
    producer.produce("payments", key="k0", value="committed-last")
    producer.commit_transaction(30)

    committed = read(bootstrap, "payments", "read_committed", partitions=2)
    assert sorted(committed) == sorted([f"committed-{i}" for i in range(20)] + ["committed-last"])
    everything = read(bootstrap, "payments", "read_uncommitted", partitions=2)
    assert sorted(everything) == sorted(committed + [f"aborted-{i}" for i in range(20)])
    # Control records take offsets but are never handed to the application: 41 records, and a marker in
    # each partition each transaction wrote to (2 + 2 + 1).
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "marks"})
    ends = [consumer.get_watermark_offsets(TopicPartition("payments", p), timeout=10)[1] for p in range(2)]
    consumer.close()
    assert sum(ends) == 41 + 5


def test_an_open_transaction_holds_read_committed_readers_at_the_last_stable_offset(txn_broker):
    bootstrap = txn_broker.bootstrap
    create(bootstrap, "ledger")
    plain = Producer({"bootstrap.servers": bootstrap})
    plain.produce("ledger", value="before")
    plain.flush(10)
    producer = transactional_producer(bootstrap, "ledger-writer")
    producer.begin_transaction()
    producer.produce("ledger", value="in-transaction")
    producer.flush(10)
    plain.produce("ledger", value="after")
    plain.flush(10)

    assert read(bootstrap, "ledger", "read_committed") == ["before"]
    assert read(bootstrap, "ledger", "read_uncommitted") == ["before", "in-transaction", "after"]
    # A read_committed consumer's end offset is the last stable offset: lag counts from there.
    assert committed_end(bootstrap, "ledger") == 1

    producer.commit_transaction(30)
    assert read(bootstrap, "ledger", "read_committed") == ["before", "in-transaction", "after"]


def test_a_second_producer_with_the_same_transactional_id_fences_the_first(txn_broker):
    bootstrap = txn_broker.bootstrap
    create(bootstrap, "fenced")
    first = transactional_producer(bootstrap, "shared-id")
    first.begin_transaction()
    first.produce("fenced", value="from-first")
    first.flush(10)
    second = transactional_producer(bootstrap, "shared-id")  # aborts the first's open transaction
    second.begin_transaction()
    second.produce("fenced", value="from-second")
    second.commit_transaction(30)
    # The first producer, unaware, tries to finish its transaction: it is fenced, fatally.
    with pytest.raises(KafkaException) as raised:
        first.produce("fenced", value="zombie")
        first.commit_transaction(10)
    assert raised.value.args[0].code() == KafkaError._FENCED and raised.value.args[0].fatal()
    assert read(bootstrap, "fenced", "read_committed") == ["from-second"]


def test_a_producer_that_dies_mid_transaction_is_aborted_after_its_timeout(txn_broker):
    bootstrap = txn_broker.bootstrap
    create(bootstrap, "orphaned")
    script = (
        "import os, signal, sys\n"
        "from confluent_kafka import Producer\n"
        "p = Producer({'bootstrap.servers': sys.argv[1], 'transactional.id': 'doomed', 'transaction.timeout.ms': 3000})\n"
        "p.init_transactions(30)\n"
        "p.begin_transaction()\n"
        "for i in range(10): p.produce('orphaned', value=f'orphan-{i}')\n"
        "p.flush(30)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    dead = subprocess.run([sys.executable, "-c", script, bootstrap], timeout=60)
    assert dead.returncode == -signal.SIGKILL
    plain = Producer({"bootstrap.servers": bootstrap})
    plain.produce("orphaned", value="later")
    plain.flush(10)
    assert read(bootstrap, "orphaned", "read_committed") == []
    started = time.time()
    wait_until(lambda: read(bootstrap, "orphaned", "read_committed", idle_polls=1) == ["later"], timeout=30,
               what="the coordinator to abort the dead producer's transaction")
    assert time.time() - started < 15


def run_worker(bootstrap, *args, timeout=120):
    return subprocess.run([sys.executable, os.path.join(HERE, "txn_worker.py"), bootstrap, *args],
                          timeout=timeout, capture_output=True, text=True)


def test_an_exactly_once_worker_killed_mid_transaction_produces_every_input_once(txn_broker):
    bootstrap = txn_broker.bootstrap
    create(bootstrap, "orders-in", "notifications-out", partitions=2)
    orders = Producer({"bootstrap.servers": bootstrap})
    for i in range(300):
        orders.produce("orders-in", key=f"order-{i}", value=f"order-{i}")
    assert orders.flush(30) == 0

    killed = run_worker(bootstrap, "--crash-after-transactions", "3")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    finished = run_worker(bootstrap, "--expect", "300")
    assert finished.returncode == 0, finished.stderr

    committed = read(bootstrap, "notifications-out", "read_committed", partitions=2)
    assert sorted(committed) == sorted(f"notified order-{i}" for i in range(300))
    # The killed worker's open transaction wrote records that read_uncommitted readers do see.
    assert len(read(bootstrap, "notifications-out", "read_uncommitted", partitions=2)) > 300


def test_the_broker_killed_mid_transaction_keeps_committed_ones_and_never_shows_the_open_one():
    with tempfile.TemporaryDirectory(prefix="petrel-txn-") as tmp:
        data = os.path.join(tmp, "data")
        broker = BrokerProcess(data, TRANSACTION_ARGS).start()
        try:
            create(broker.bootstrap, "journal")
            producer = transactional_producer(broker.bootstrap, "journal-writer", **{"transaction.timeout.ms": 4000})
            producer.begin_transaction()
            for i in range(50):
                producer.produce("journal", value=f"committed-{i}")
            producer.commit_transaction(30)
            producer.begin_transaction()
            for i in range(50):
                producer.produce("journal", value=f"open-{i}")
            producer.flush(30)
        finally:
            broker.kill()
        broker = BrokerProcess(data, TRANSACTION_ARGS).start()
        try:
            # The open transaction holds the last stable offset until its timeout aborts it; it is never
            # visible either way.
            assert read(broker.bootstrap, "journal", "read_committed") == [f"committed-{i}" for i in range(50)]
            wait_until(lambda: committed_end(broker.bootstrap, "journal") == 102, timeout=30,
                       what="the open transaction to be aborted after the restart")
            assert read(broker.bootstrap, "journal", "read_committed") == [f"committed-{i}" for i in range(50)]
        finally:
            assert broker.stop() == 0, broker.log_tail()


def test_a_hung_transaction_is_found_with_the_cli_and_the_metrics():
    import urllib.request
    from conftest import petrel, free_port
    with tempfile.TemporaryDirectory(prefix="petrel-txn-") as tmp:
        metrics_port = free_port()
        broker = BrokerProcess(os.path.join(tmp, "data"),
                               TRANSACTION_ARGS + ["--metrics", f"127.0.0.1:{metrics_port}"]).start()
        try:
            bootstrap = broker.bootstrap
            create(bootstrap, "stalled")
            hung = transactional_producer(bootstrap, "stuck-writer")
            hung.begin_transaction()
            for i in range(5):
                hung.produce("stalled", value=f"pending-{i}")
            hung.flush(30)

            listed = petrel("transactions", "list", "--bootstrap", bootstrap)
            assert "stuck-writer" in listed and "Ongoing" in listed
            described = petrel("transactions", "describe", "stuck-writer", "--bootstrap", bootstrap)
            assert "STATE Ongoing" in described and "OPEN FOR" in described and "stalled-0" in described
            assert "no transactional ids" not in petrel("transactions", "list", "--state", "Ongoing",
                                                        "--bootstrap", bootstrap)

            def metrics():
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
                    return response.read().decode()
            text = metrics()
            assert "petrel_transactions_open 1" in text
            assert 'petrel_last_stable_offset_lag{topic="stalled",partition="0"} 5' in text

            hung.abort_transaction(30)
            text = metrics()
            assert "petrel_transactions_open 0" in text
            assert 'petrel_last_stable_offset_lag{topic="stalled",partition="0"} 0' in text
            assert 'petrel_transactions_ended_total{result="abort"} 1' in text
            assert "STATE CompleteAbort" in petrel("transactions", "describe", "stuck-writer", "--bootstrap", bootstrap)
        finally:
            assert broker.stop() == 0, broker.log_tail()
