"""The admin APIs as Kafka's admin clients use them (confluent-kafka and kafka-python): topic and broker
configs (every Kafka topic config accepted at create time, DescribeConfigs, AlterConfigs and
IncrementalAlterConfigs), CreatePartitions, DeleteRecords, DescribeCluster, DescribeLogDirs,
DescribeProducers and OffsetDelete."""
import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                  NewTopic, ResourceType)
from kafka.admin import ConfigResource as KPConfigResource
from kafka.admin import ConfigResourceType, KafkaAdminClient

from conftest import BrokerProcess, admin, forget_admin_clients




def create(broker, name, configs, partitions=1):
    futures = admin(broker).create_topics([NewTopic(name, partitions, 1, config=configs)], request_timeout=10)
    futures[name].result(15)


def describe(broker, resource_type, name):
    resource = ConfigResource(resource_type, name)
    return admin(broker).describe_configs([resource], request_timeout=10)[resource].result(15)


def test_ordinary_kafka_topic_configs_are_accepted_and_described_back(broker):
    create(broker, "described", {
        "min.insync.replicas": "1", "unclean.leader.election.enable": "false", "compression.type": "producer",
        "retention.ms": "3600000", "preallocate": "true",
    })
    configs = describe(broker, ResourceType.TOPIC, "described")
    for name, value in [("min.insync.replicas", "1"), ("unclean.leader.election.enable", "false"),
                        ("compression.type", "producer"), ("retention.ms", "3600000"), ("preallocate", "true")]:
        assert configs[name].value == value, name
        assert configs[name].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value, name
    # Not overridden: from a broker setting, or Kafka's default.
    assert configs["segment.bytes"].value == "1073741824"
    assert configs["segment.bytes"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert configs["delete.retention.ms"].value == "86400000"
    assert configs["delete.retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert "flush.policy" in configs and "max.compaction.lag.ms" in configs
    assert not configs["retention.ms"].is_read_only and not configs["retention.ms"].is_sensitive
    synonyms = configs["retention.ms"].synonyms
    assert "log.retention.ms" in synonyms and synonyms["log.retention.ms"].value == "604800000"


@pytest.mark.parametrize("name, value, words", [
    ("cleanup.policy", "shred", "must be delete, compact or both"),
    ("segment.bytes", "1", "segment.bytes"),
    ("retention.msx", "1", "retention.msx"),
    ("unclean.leader.election.enable", "maybe", "true or false"),
])
def test_bad_topic_configs_are_invalid_config_naming_the_key(broker, name, value, words):
    with pytest.raises(KafkaException) as raised:
        create(broker, f"refused-{name.replace('.', '-')}", {name: value})
    error = raised.value.args[0]
    assert error.code() == KafkaError.INVALID_CONFIG
    assert words in error.str() and name in error.str()


def test_the_broker_resource_reports_settings_under_kafka_names(tmp_path):
    broker = BrokerProcess(str(tmp_path / "data"), ["--retention-ms", "7200000", "--default-partitions", "3"]).start()
    try:
        configs = describe(broker, ResourceType.BROKER, "1")
        assert configs["log.retention.ms"].value == "7200000"
        assert configs["num.partitions"].value == "3"
        assert configs["listeners"].value == f"PLAINTEXT://{broker.bootstrap}"
        assert configs["log.retention.ms"].is_read_only
        assert configs["log.retention.ms"].source == ConfigSource.STATIC_BROKER_CONFIG.value
        assert configs["default.replication.factor"].value == "1"
        # A topic without an override follows the broker's setting.
        create(broker, "follows", {})
        assert describe(broker, ResourceType.TOPIC, "follows")["retention.ms"].value == "7200000"
    finally:
        assert broker.stop() == 0


def test_an_unknown_topic_is_its_own_error(broker):
    with pytest.raises(KafkaException) as raised:
        describe(broker, ResourceType.TOPIC, "nowhere")
    assert raised.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_kafka_python_describes_topic_and_broker_configs(broker):
    create(broker, "kp-described", {"retention.ms": "5000", "segment.jitter.ms": "10"})
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    try:
        modified = client.describe_configs([KPConfigResource(ConfigResourceType.TOPIC, "kp-described")])
        topic = modified["topic"]["kp-described"]
        assert topic["retention.ms"]["value"] == "5000" and topic["segment.jitter.ms"]["value"] == "10"
        everything = client.describe_configs([KPConfigResource(ConfigResourceType.TOPIC, "kp-described")],
                                             include_synonyms=True, config_filter="all")
        assert everything["topic"]["kp-described"]["segment.bytes"]["value"] == "1073741824"
        brokers = client.describe_configs([KPConfigResource(ConfigResourceType.BROKER, "1")], config_filter="all")
        assert brokers["broker"]["1"]["log.segment.bytes"]["value"] == "1073741824"
    finally:
        client.close()


def test_min_insync_replicas_above_one_refuses_acks_all_only(broker):
    create(broker, "strict", {"min.insync.replicas": "2"})
    outcomes = {}
    for acks in ("all", "1"):
        producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": acks, "message.timeout.ms": 3000,
                             "enable.idempotence": False})
        producer.produce("strict", value=b"x", on_delivery=lambda error, message, acks=acks: outcomes.update(
            {acks: error}))
        producer.flush(15)
    assert outcomes["all"] is not None and outcomes["all"].code() in (
        KafkaError.NOT_ENOUGH_REPLICAS, KafkaError._MSG_TIMED_OUT)
    assert outcomes["1"] is None


def test_confluent_alters_configs_incrementally_and_whole(broker):
    create(broker, "altered", {"retention.ms": "3600000"})
    resource = ConfigResource(ResourceType.TOPIC, "altered", incremental_configs=[
        ConfigEntry("segment.ms", "60000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
    ])
    admin(broker).incremental_alter_configs([resource])[resource].result(15)
    configs = describe(broker, ResourceType.TOPIC, "altered")
    assert configs["segment.ms"].value == "60000" and configs["segment.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["retention.ms"].value == "604800000", "DELETE goes back to the broker's setting"

    whole = ConfigResource(ResourceType.TOPIC, "altered", set_config={"max.message.bytes": "2000000"})
    admin(broker).alter_configs([whole])[whole].result(15)
    configs = describe(broker, ResourceType.TOPIC, "altered")
    assert configs["max.message.bytes"].value == "2000000"
    assert configs["segment.ms"].source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value, "AlterConfigs replaces the set"

    bad = ConfigResource(ResourceType.TOPIC, "altered", incremental_configs=[
        ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as raised:
        admin(broker).incremental_alter_configs([bad])[bad].result(15)
    assert raised.value.args[0].code() == KafkaError.INVALID_CONFIG


def test_kafka_python_alters_configs_and_the_change_survives_kill_9(tmp_path):
    broker = BrokerProcess(str(tmp_path / "data")).start()
    try:
        create(broker, "durable", {})
        client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
        try:
            client.alter_configs([KPConfigResource(ConfigResourceType.TOPIC, "durable", configs={"retention.ms": "6000"})])
        finally:
            client.close()
        broker.kill()
        forget_admin_clients()
        broker.start()
        assert describe(broker, ResourceType.TOPIC, "durable")["retention.ms"].value == "6000"
    finally:
        broker.stop()


def test_topics_grow_with_confluent_and_kafka_python(broker):
    from confluent_kafka.admin import NewPartitions
    from kafka.admin import NewPartitions as KPNewPartitions
    create(broker, "growing", {}, partitions=2)
    admin(broker).create_partitions([NewPartitions("growing", 4)], request_timeout=10)["growing"].result(15)
    assert len(admin(broker).list_topics("growing", timeout=10).topics["growing"].partitions) == 4
    with pytest.raises(KafkaException) as raised:
        admin(broker).create_partitions([NewPartitions("growing", 3)], request_timeout=10)["growing"].result(15)
    assert raised.value.args[0].code() == KafkaError.INVALID_PARTITIONS
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    try:
        client.create_partitions({"growing": KPNewPartitions(total_count=6)})
    finally:
        client.close()
    assert len(admin(broker).list_topics("growing", timeout=10).topics["growing"].partitions) == 6
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    delivered = []
    producer.produce("growing", value=b"on the newest", partition=5, on_delivery=lambda e, m: delivered.append((e, m)))
    producer.flush(15)
    assert delivered and delivered[0][0] is None and delivered[0][1].offset() == 0


def test_describe_cluster(broker):
    cluster = admin(broker).describe_cluster(request_timeout=10).result(15)
    assert cluster.cluster_id and cluster.controller.id == 1
    assert [(node.id, node.port) for node in cluster.nodes] == [(1, broker.port)]


def test_kafka_python_log_dirs_producers_and_group_offsets(broker):
    from confluent_kafka import Consumer, TopicPartition
    from kafka import TopicPartition as KPTopicPartition
    create(broker, "inspected", {}, partitions=2)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "acks": "all"})
    for index in range(10):
        producer.produce("inspected", value=b"x" * 100, partition=index % 2)
    producer.flush(15)
    committer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "inspectors"})
    committer.commit(offsets=[TopicPartition("inspected", 0, 5), TopicPartition("inspected", 1, 5)], asynchronous=False)
    committer.close()

    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    try:
        dirs = client.describe_log_dirs()
        text = repr(dirs)
        assert broker.data_dir in text and "inspected" in text, text
        producers = client.describe_producers([KPTopicPartition("inspected", 0)])
        state = producers[KPTopicPartition("inspected", 0)]
        assert len(state.active_producers) == 1 and state.active_producers[0].last_sequence == 4, state
        client.delete_group_offsets("inspectors", [KPTopicPartition("inspected", 0)])
        remaining = client.list_group_offsets("inspectors")["inspectors"]
        assert KPTopicPartition("inspected", 0) not in remaining and KPTopicPartition("inspected", 1) in remaining
    finally:
        client.close()


def test_delete_records_moves_the_low_watermark_for_every_client(tmp_path):
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import OffsetSpec
    from kafka import TopicPartition as KPTopicPartition
    broker = BrokerProcess(str(tmp_path / "data"), ["--segment-bytes", "1024"]).start()
    try:
        create(broker, "poisoned", {})
        producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
        for index in range(40):
            producer.produce("poisoned", value=b"order-%02d" % index + b" " * 60, partition=0)
            producer.flush(10)
        tp = TopicPartition("poisoned", 0, 25)
        deleted = admin(broker).delete_records([tp], request_timeout=10)[tp].result(15)
        assert deleted.low_watermark == 25
        earliest = TopicPartition("poisoned", 0)
        listed = admin(broker).list_offsets({earliest: OffsetSpec.earliest()}, request_timeout=10)[earliest].result(15)
        assert listed.offset == 25

        client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
        try:
            client.delete_records({KPTopicPartition("poisoned", 0): 30})
        finally:
            client.close()

        # kill -9: the new start is durable, and a consumer starting below it is moved up to it.
        broker.kill()
        forget_admin_clients()
        broker.start()
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "readers",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.assign([TopicPartition("poisoned", 0, 0)])
        first = None
        for _ in range(50):
            message = consumer.poll(0.2)
            if message is not None and not message.error():
                first = message
                break
        consumer.close()
        assert first is not None and first.offset() == 30 and first.value().startswith(b"order-30")
    finally:
        broker.stop()


def test_the_petrel_cli_changes_live_topics(broker):
    import subprocess
    from conftest import PETREL, petrel
    b = ["--bootstrap", broker.bootstrap]
    petrel("topics", "create", "live", "--partitions", "1", "--config", "retention.ms=3600000", *b)
    subprocess.run([PETREL, "produce", "--topic", "live", "--partition", "0", *b], input="a\nb\nc\nd\n", text=True,
                   check=True, capture_output=True)
    described = petrel("topics", "describe", "live", *b)
    assert [line.split() for line in described.splitlines() if line.startswith("retention.ms")] == \
        [["retention.ms", "3600000", "topic"]]
    assert "more at Kafka's defaults" in described

    assert "altered topic live" in petrel("topics", "alter", "live", "--config", "segment.ms=60000",
                                          "--delete-config", "retention.ms", *b)
    configs = petrel("configs", "describe", "--topic", "live", *b)
    rows = {line.split()[0]: line.split()[1:] for line in configs.splitlines()[1:]}
    assert rows["segment.ms"][:2] == ["60000", "topic"] and rows["retention.ms"][0] == "604800000"
    assert "log.retention.ms" in petrel("configs", "describe", "--broker", *b)

    assert "topic live has 3 partitions" in petrel("topics", "add-partitions", "live", "--count", "3", *b)
    assert "live-0 now starts at offset 2" in petrel("topics", "delete-records", "live", "--partition", "0",
                                                     "--before", "2", *b)
    partition_rows = [line.split() for line in petrel("topics", "describe", "live", *b).splitlines()
                      if line[:1].isdigit()]
    assert partition_rows[0][:5] == ["0", "1", "2", "4", "2"] and len(partition_rows) == 3

    refused = subprocess.run([PETREL, "topics", "alter", "live", "--config", "cleanup.policy=shred", *b],
                             capture_output=True, text=True)
    assert refused.returncode == 1 and refused.stderr.startswith("petrel: cannot alter topic live: INVALID_CONFIG")

    subprocess.run([PETREL, "consume", "--topic", "live", "--group", "trimmers", "--from-beginning",
                    "--max-messages", "2", *b], check=True, capture_output=True, timeout=60)
    assert "deleted the offsets of group trimmers for live" in petrel("groups", "delete-offsets", "trimmers",
                                                                      "--topic", "live", *b)


def test_log_append_time_as_librdkafka_and_kafka_python_read_it(broker):
    import time

    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer, TopicPartition
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KPTopicPartition
    create(broker, "appended", {"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    producer.produce("appended", value=b"stamped by the broker", timestamp=1_600_000_000_000)
    producer.flush(15)

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "stamps", "enable.auto.commit": False})
    consumer.assign([TopicPartition("appended", 0, 0)])
    message = None
    for _ in range(50):
        message = consumer.poll(0.2)
        if message is not None and not message.error():
            break
    kind, stamp = message.timestamp()
    assert kind == TIMESTAMP_LOG_APPEND_TIME and before - 1000 <= stamp <= int(time.time() * 1000) + 1000
    found = consumer.offsets_for_times([TopicPartition("appended", 0, before - 1000)], timeout=10)
    assert found[0].offset == 0
    consumer.close()

    python_consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, consumer_timeout_ms=5000,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
    python_consumer.assign([KPTopicPartition("appended", 0)])
    record = next(iter(python_consumer))
    assert record.timestamp_type == 1 and record.timestamp == stamp
    python_consumer.close()


def test_a_live_group_takes_on_partitions_added_while_it_runs(broker):
    import time

    from confluent_kafka import Consumer
    from confluent_kafka.admin import NewPartitions
    create(broker, "widening", {}, partitions=1)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "wideners", "auto.offset.reset": "earliest",
                         "topic.metadata.refresh.interval.ms": 1000, "session.timeout.ms": 6000})
    consumer.subscribe(["widening"])
    try:
        deadline = time.time() + 30
        while not consumer.assignment() and time.time() < deadline:
            consumer.poll(0.2)
        assert [tp.partition for tp in consumer.assignment()] == [0]
        admin(broker).create_partitions([NewPartitions("widening", 2)], request_timeout=10)["widening"].result(15)
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        producer.produce("widening", value=b"on the new partition", partition=1)
        producer.flush(10)
        received = None
        deadline = time.time() + 45
        while received is None and time.time() < deadline:
            message = consumer.poll(0.5)
            if message is not None and not message.error() and message.partition() == 1:
                received = message
        assert sorted(tp.partition for tp in consumer.assignment()) == [0, 1]
        assert received is not None and received.value() == b"on the new partition"
    finally:
        consumer.close()
