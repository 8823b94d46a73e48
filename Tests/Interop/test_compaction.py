"""Log compaction end to end, as confluent-kafka (librdkafka) and kafka-python produce to and read back from
a topic with cleanup.policy=compact: keyed updates and tombstones come back, after cleaning, as one record
per live key with its latest value; tombstones stay for delete.retention.ms and then go; offsets keep
their numbers and the high watermark does not move; the same after a restart."""
import os
import tempfile
import time

import pytest
from conftest import BrokerProcess, wait_until

KEYS = 300
ROUNDS = 4
DELETED = {f"order-{k}" for k in range(0, KEYS, 10)}
# Tombstones are kept this long after the cleaning that first sees them.
DELETE_RETENTION_MS = 8000
CLEANER_ARGS = ["--log-cleaner-backoff-ms", "100", "--retention-check-interval-ms", "200"]
TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "segment.bytes": "4096",
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": str(DELETE_RETENTION_MS),
}


class Confluent:
    """confluent-kafka: gzip batches from an idempotent producer; reads with assign + poll. Batches are
    kept small so that the topic's small segments roll."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap

    def create(self, topic, config):
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        admin.create_topics([NewTopic(topic, 1, 1, config=config)])[topic].result(30)

    def produce(self, topic, pairs):
        from confluent_kafka import Producer
        producer = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True,
                             "compression.type": "gzip", "linger.ms": 5, "batch.num.messages": 40})
        errors = []
        for key, value in pairs:
            producer.produce(topic, key=key, value=value,
                             on_delivery=lambda error, _: error and errors.append(error))
        assert producer.flush(30) == 0
        return errors

    def watermarks(self, topic):
        from confluent_kafka import Consumer, TopicPartition
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "watermarks"})
        try:
            return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        finally:
            consumer.close()

    def read_all(self, topic, end):
        """Every record from the start up to the high watermark `end`: (offset, key, value) triples."""
        from confluent_kafka import Consumer, TopicPartition
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "reader",
                             "enable.auto.commit": False})
        consumer.assign([TopicPartition(topic, 0, 0)])
        records = []
        deadline = time.time() + 30
        try:
            while time.time() < deadline:
                message = consumer.poll(0.5)
                if message is None:
                    continue
                assert not message.error(), message.error()
                records.append((message.offset(), message.key().decode(),
                                None if message.value() is None else message.value().decode()))
                if message.offset() == end - 1:
                    return records
        finally:
            consumer.close()
        raise AssertionError(f"confluent-kafka did not read up to offset {end - 1}; last {records[-1:]}")


class KafkaPython:
    """kafka-python: uncompressed batches from its (idempotent by default) producer."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap

    def create(self, topic, config):
        from kafka.admin import KafkaAdminClient, NewTopic
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            admin.create_topics([NewTopic(topic, 1, 1, topic_configs=config)])
        finally:
            admin.close()

    def produce(self, topic, pairs):
        from kafka import KafkaProducer
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5, batch_size=2048)
        futures = [producer.send(topic, key=key, value=value) for key, value in pairs]
        producer.flush(30)
        errors = []
        for future in futures:
            try:
                future.get(timeout=10)
            except Exception as error:  # the test looks at which errors came back
                errors.append(error)
        producer.close()
        return errors

    def watermarks(self, topic):
        from kafka import KafkaConsumer, TopicPartition
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap)
        try:
            partition = TopicPartition(topic, 0)
            return (consumer.beginning_offsets([partition])[partition], consumer.end_offsets([partition])[partition])
        finally:
            consumer.close()

    def read_all(self, topic, end):
        from kafka import KafkaConsumer, TopicPartition
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, consumer_timeout_ms=10000,
                                 enable_auto_commit=False)
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek(partition, 0)
        records = []
        try:
            for message in consumer:
                records.append((message.offset, message.key.decode(),
                                None if message.value is None else message.value.decode()))
                if message.offset == end - 1:
                    return records
        finally:
            consumer.close()
        raise AssertionError(f"kafka-python did not read up to offset {end - 1}; last {records[-1:]}")


CLIENTS = {"confluent-kafka": Confluent, "kafka-python": KafkaPython}


def fillers(start, count):
    """Records with keys of their own and values that do not compress: they roll segments, so that
    what came before them leaves the active segment (which is never cleaned)."""
    return [(f"filler-{i}".encode(), os.urandom(48).hex().encode()) for i in range(start, start + count)]


def updates():
    pairs = [(f"order-{k}".encode(), f"order-{k}:status-{r}".encode()) for r in range(ROUNDS) for k in range(KEYS)]
    return pairs + [(key.encode(), None) for key in sorted(DELETED)]


def check_compacted(records, end, with_tombstones):
    offsets = [offset for offset, _, _ in records]
    assert offsets == sorted(set(offsets)), "offsets must be strictly increasing"
    assert offsets[-1] == end - 1
    keys = [key for _, key, _ in records]
    assert len(keys) == len(set(keys)), "one record per key"
    table = {key: value for _, key, value in records}
    for k in range(KEYS):
        key = f"order-{k}"
        if key in DELETED:
            assert (table.get(key, "absent") is None) if with_tombstones else key not in table, key
        else:
            assert table[key] == f"{key}:status-{ROUNDS - 1}"


def cleaned(client, topic, end, with_tombstones):
    """Reads the topic until the cleaner has got it to the expected shape (or the wait times out)."""
    def attempt():
        records = client.read_all(topic, end)
        keys = [key for _, key, _ in records]
        tombstones = [key for _, key, value in records if value is None]
        done = len(keys) == len(set(keys)) and bool(tombstones) == with_tombstones
        return records if done else None
    return wait_until(attempt, timeout=90, interval=0.5, what="the cleaner to compact the topic")


@pytest.mark.parametrize("client_name", sorted(CLIENTS))
def test_compacted_topic_reads_back_as_latest_value_per_key(client_name):
    with tempfile.TemporaryDirectory(prefix="petrel-compaction-") as tmp:
        data = os.path.join(tmp, "data")
        broker = BrokerProcess(data, CLEANER_ARGS).start()
        client = CLIENTS[client_name](broker.bootstrap)
        try:
            client.create("order-status", TOPIC_CONFIG)
            assert client.produce("order-status", updates() + fillers(0, 120)) == []
            low, end = client.watermarks("order-status")
            assert (low, end) == (0, KEYS * ROUNDS + len(DELETED) + 120)

            # After cleaning: one record per key, deleted keys as tombstones (a slow reader still sees the
            # delete), the high watermark where it was.
            records = cleaned(client, "order-status", end, with_tombstones=True)
            check_compacted(records, end, with_tombstones=True)
            assert records[0][0] > 0, "superseded values at the start were removed"
            assert client.watermarks("order-status")[1] == end

            # Past delete.retention.ms, the next cleaning removes the tombstones; no old value comes back.
            time.sleep(DELETE_RETENTION_MS / 1000 + 0.5)
            assert client.produce("order-status", fillers(120, 120)) == []
            end = client.watermarks("order-status")[1]
            records = cleaned(client, "order-status", end, with_tombstones=False)
            check_compacted(records, end, with_tombstones=False)
        finally:
            assert broker.stop() == 0, broker.log_tail()

        # A restart serves the same records at the same offsets.
        broker = BrokerProcess(data, CLEANER_ARGS).start()
        client = CLIENTS[client_name](broker.bootstrap)
        try:
            assert client.watermarks("order-status")[1] == end
            assert client.read_all("order-status", end) == records
        finally:
            assert broker.stop() == 0, broker.log_tail()


@pytest.mark.parametrize("client_name", sorted(CLIENTS))
def test_records_without_a_key_are_refused_on_a_compacted_topic(broker, client_name):
    client = CLIENTS[client_name](broker.bootstrap)
    client.create("keyed-only", {"cleanup.policy": "compact"})
    errors = client.produce("keyed-only", [(b"k", b"kept"), (None, b"keyless")])
    assert len(errors) >= 1
    error = errors[-1]
    if client_name == "confluent-kafka":
        from confluent_kafka import KafkaError
        assert error.code() == KafkaError.INVALID_RECORD
    else:
        from kafka.errors import InvalidRecordError
        assert isinstance(error, InvalidRecordError)


def test_compact_delete_topics_also_lose_records_past_retention():
    with tempfile.TemporaryDirectory(prefix="petrel-compaction-") as tmp:
        broker = BrokerProcess(os.path.join(tmp, "data"), CLEANER_ARGS).start()
        client = Confluent(broker.bootstrap)
        try:
            client.create("expiring-status", {"cleanup.policy": "compact,delete", "retention.ms": "1500",
                                              "segment.bytes": "4096"})
            assert client.produce("expiring-status", fillers(0, 100)) == []
            _, end = client.watermarks("expiring-status")
            # Retention deletes every segment once its newest record is 1.5 s old, the active one included.
            wait_until(lambda: client.watermarks("expiring-status")[0] == end, timeout=30,
                       what="retention to delete the compacted topic's old segments")
        finally:
            assert broker.stop() == 0, broker.log_tail()


# The configs stream-processing frameworks put on the changelog and repartition topics they create.
FRAMEWORK_TOPICS = {
    # Kafka Streams: a key-value store's changelog, a windowed store's changelog, a repartition topic.
    "app-store-changelog": {"cleanup.policy": "compact", "message.timestamp.type": "CreateTime"},
    "app-window-changelog": {"cleanup.policy": "compact,delete", "retention.ms": "172800000",
                             "message.timestamp.type": "CreateTime"},
    "app-repartition": {"cleanup.policy": "delete", "segment.bytes": "52428800", "retention.ms": "-1",
                        "message.timestamp.type": "CreateTime"},
    # Faust and Quix Streams: compacted changelogs, some with a compaction lag.
    "faust-table-changelog": {"cleanup.policy": "compact"},
    "quix-changelog": {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000",
                       "max.compaction.lag.ms": "86400000", "min.cleanable.dirty.ratio": "0.1",
                       "delete.retention.ms": "3600000"},
}


def test_stream_processing_frameworks_changelog_configs_are_accepted_and_honoured(broker):
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.create_topics([NewTopic(name, 1, 1, config=config) for name, config in FRAMEWORK_TOPICS.items()])
    for future in futures.values():
        future.result(30)
    for name, config in FRAMEWORK_TOPICS.items():
        resource = ConfigResource(ResourceType.TOPIC, name)
        described = admin.describe_configs([resource])[resource].result(30)
        for key, value in config.items():
            assert described[key].value == value, (name, key)
