"""Committed offsets kept as Kafka keeps them: in the internal, compacted topic `__consumer_offsets`, read
back by Kafka's own tools.

What the tests show:
  * the partition of a group (Java's String.hashCode of the group id, Kafka's Utils.abs, modulo the
    partition count) and this file's decoder of Kafka's record schemas, on hash values Java computed and
    on bytes built by hand from the schemas: no broker, and none of the broker's code;
  * Metadata reports the topic as internal, with 16 partitions (or --offsets-topic-num-partitions), to
    confluent-kafka and kafka-python;
  * a commit (confluent-kafka's Consumer.commit) is an OffsetCommitKey v1 / OffsetCommitValue v3 record in
    the group's partition, with the committed offset, its metadata and a commit time of now; confluent-kafka
    and kcat read the same records;
  * OffsetDelete (kafka-python) and DeleteGroups (confluent-kafka) leave tombstones for the deleted keys;
  * a classic group's membership is a GroupMetadataKey v2 / GroupMetadataValue v3 record, and an emptied
    group a record with no members;
  * a Produce to the topic is refused with INVALID_TOPIC_EXCEPTION, and a forged commit moves nothing;
  * Burrow 1.2 (Debian's, burrow_fixture.py), which knows groups only from this topic, reports the lag
    `petrel groups describe` prints, partition by partition, and turns a group's status from OK to a
    warning or an error when it stops committing while producers go on.

The decoder follows Kafka's schemas (clients/src/main/resources/common/message/OffsetCommitKey.json,
OffsetCommitValue.json, GroupMetadataKey.json, GroupMetadataValue.json): every integer big-endian, a
string an int16 length then UTF-8 (-1: null), bytes an int32 length then the bytes, an array an int32
count; a tombstone is a record with the key and a null value.
"""
import struct
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import NewTopic
from kafka import TopicPartition as KPTopicPartition
from kafka.admin import KafkaAdminClient

from burrow_fixture import burrow_and_zookeeper
from conftest import BrokerProcess, admin, petrel, wait_until

OFFSETS_TOPIC = "__consumer_offsets"
DEFAULT_PARTITIONS = 16
RULE = "Utils.abs(groupId.hashCode()) % partitions, Utils.abs(Integer.MIN_VALUE) = 0"


# --- Kafka's rules, written from Kafka's schemas ---------------------------------------------------------

def java_string_hash(text):
    """Java's String.hashCode: s[0]*31^(n-1) + ... + s[n-1] over UTF-16 code units, in int32 arithmetic."""
    units = text.encode("utf-16-be")
    h = 0
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i:i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def offsets_partition_for(group, partitions=DEFAULT_PARTITIONS):
    """The `__consumer_offsets` partition of a group, as Kafka's group coordinator computes it:
    Utils.abs(groupId.hashCode()) % partitions, where Utils.abs is Math.abs with Integer.MIN_VALUE -> 0.
    (Not hashCode & 0x7fffffff, the producer partitioner's rule: the two differ for every negative hash.)"""
    h = java_string_hash(group)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


class Reader:
    """Kafka's fixed-width encoding, big-endian; a field past the end, or bytes left over, is an error."""

    def __init__(self, data):
        self.data = bytes(data)
        self.at = 0

    def _take(self, count):
        if count < 0 or self.at + count > len(self.data):
            raise ValueError(f"truncated: {count} bytes wanted at {self.at} of {len(self.data)}")
        chunk = self.data[self.at:self.at + count]
        self.at += count
        return chunk

    def int16(self):
        return struct.unpack(">h", self._take(2))[0]

    def int32(self):
        return struct.unpack(">i", self._take(4))[0]

    def int64(self):
        return struct.unpack(">q", self._take(8))[0]

    def nullable_string(self):
        length = self.int16()
        return None if length == -1 else self._take(length).decode("utf-8")

    def string(self):
        value = self.nullable_string()
        if value is None:
            raise ValueError(f"null where a string is required, at {self.at - 2}")
        return value

    def bytes(self):
        length = self.int32()
        if length < 0:
            raise ValueError(f"null where bytes are required, at {self.at - 4}")
        return self._take(length)

    def end(self):
        if self.at != len(self.data):
            raise ValueError(f"{len(self.data) - self.at} bytes left over after the last field")


@dataclass(frozen=True)
class OffsetCommitKey:
    version: int
    group: str
    topic: str
    partition: int


@dataclass(frozen=True)
class OffsetCommitValue:
    version: int
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp: int


@dataclass(frozen=True)
class GroupMetadataKey:
    version: int
    group: str


@dataclass(frozen=True)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout: int
    session_timeout: int
    subscription: bytes
    assignment: bytes


@dataclass(frozen=True)
class GroupMetadataValue:
    version: int
    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    current_state_timestamp: int
    members: tuple


def decode_key(raw):
    """OffsetCommitKey (versions 0 and 1: group, topic, partition) or GroupMetadataKey (version 2: group)."""
    r = Reader(raw)
    version = r.int16()
    if version in (0, 1):
        key = OffsetCommitKey(version, r.string(), r.string(), r.int32())
    elif version == 2:
        key = GroupMetadataKey(version, r.string())
    else:
        raise ValueError(f"key version {version} is not an offset commit or group metadata key")
    r.end()
    return key


def decode_offset_value(raw):
    """OffsetCommitValue version 3: offset, leader epoch, metadata, commit timestamp. None for a tombstone."""
    if raw is None:
        return None
    r = Reader(raw)
    version = r.int16()
    if version != 3:
        raise ValueError(f"OffsetCommitValue version {version}, expected 3")
    value = OffsetCommitValue(version, r.int64(), r.int32(), r.string(), r.int64())
    r.end()
    return value


def decode_group_metadata_value(raw):
    """GroupMetadataValue version 3 with its members. None for a tombstone."""
    if raw is None:
        return None
    r = Reader(raw)
    version = r.int16()
    if version != 3:
        raise ValueError(f"GroupMetadataValue version {version}, expected 3")
    protocol_type, generation, protocol, leader, state_timestamp = (
        r.string(), r.int32(), r.nullable_string(), r.nullable_string(), r.int64())
    count = r.int32()
    if count < 0:
        raise ValueError("null member array")
    members = tuple(Member(r.string(), r.nullable_string(), r.string(), r.string(), r.int32(), r.int32(),
                           r.bytes(), r.bytes()) for _ in range(count))
    r.end()
    return GroupMetadataValue(version, protocol_type, generation, protocol, leader, state_timestamp, members)


def decode_subscription_topics(raw):
    """The topics of a consumer protocol Subscription (any version: int16 version, then the topic array)."""
    r = Reader(raw)
    r.int16()
    return [r.string() for _ in range(r.int32())]


def decode_assignment(raw):
    """A consumer protocol Assignment: {topic: [partitions]} (int16 version, array of topic + int32 array)."""
    r = Reader(raw)
    r.int16()
    assignment = {}
    for _ in range(r.int32()):
        topic = r.string()
        assignment[topic] = [r.int32() for _ in range(r.int32())]
    return assignment


# --- Reading the topic ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None




def offsets_topic_partitions(broker):
    topic = admin(broker).list_topics(OFFSETS_TOPIC, timeout=10).topics.get(OFFSETS_TOPIC)
    assert topic is not None and topic.error is None, f"Metadata has no {OFFSETS_TOPIC}: {topic and topic.error}"
    return len(topic.partitions)


def read_offsets_topic(broker, timeout=30):
    """Every record of `__consumer_offsets`, from the beginning of each partition to its end, read by
    confluent-kafka with assign(). (confluent-kafka insists on a group.id; this one never joins or commits,
    so it writes nothing to the topic.)"""
    partitions = offsets_topic_partitions(broker)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "offsets-topic-reader",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        consumer.assign([TopicPartition(OFFSETS_TOPIC, p, OFFSET_BEGINNING) for p in range(partitions)])
        records, at_end = [], set()
        deadline = time.time() + timeout
        while len(at_end) < partitions:
            assert time.time() < deadline, f"read {OFFSETS_TOPIC} to the end of only {sorted(at_end)} in {timeout} s"
            for message in consumer.consume(500, 0.5):
                if message.error():
                    assert message.error().code() == KafkaError._PARTITION_EOF, f"reading {OFFSETS_TOPIC}: {message.error()}"
                    at_end.add(message.partition())
                    continue
                records.append(Record(message.partition(), message.offset(), message.key(), message.value()))
        return records
    finally:
        consumer.close()


def kcat_offsets_topic(broker):
    """The same records through kcat: `-f '%p %o %K %S\\n%k%s'` writes each record's key and value raw,
    after a line with their lengths (-1: null), so binary keys come through intact."""
    result = subprocess.run(["kcat", "-b", broker.bootstrap, "-C", "-t", OFFSETS_TOPIC, "-o", "beginning", "-e", "-q",
                             "-f", "%p %o %K %S\n%k%s"], capture_output=True, timeout=60)
    assert result.returncode == 0, f"kcat failed: {result.stderr.decode(errors='replace')}"
    out, at, records = result.stdout, 0, []
    while at < len(out):
        newline = out.index(b"\n", at)
        partition, offset, key_length, value_length = map(int, out[at:newline].split())
        at = newline + 1
        key = None if key_length < 0 else out[at:at + key_length]
        at += max(key_length, 0)
        value = None if value_length < 0 else out[at:at + value_length]
        at += max(value_length, 0)
        records.append(Record(partition, offset, key, value))
    return records


def is_classic_record(record):
    """Whether the record is an offset commit or a classic group's metadata (key versions 0 to 2). The
    topic holds Kafka's other record types too (a consumer-protocol group's, from key version 3), which a
    reader that does not know them skips, as Burrow does."""
    return struct.unpack_from(">h", record.key)[0] in (0, 1, 2)


def latest_by_key(records):
    """{decoded key: the record written last for it}: what compaction keeps."""
    latest = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        if is_classic_record(record):
            latest[decode_key(record.key)] = record
    return latest


def commit(bootstrap, group, offsets):
    """Commits {(topic, partition): offset or (offset, metadata)} for `group` the way an application does:
    a confluent-kafka consumer with that group.id, synchronously; returns when the broker has answered."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        partitions = []
        for (topic, partition), offset in offsets.items():
            offset, metadata = offset if isinstance(offset, tuple) else (offset, None)
            partitions.append(TopicPartition(topic, partition, offset) if metadata is None
                              else TopicPartition(topic, partition, offset, metadata=metadata))
        consumer.commit(offsets=partitions, asynchronous=False)
    finally:
        consumer.close()


def produce(bootstrap, topic, count, partitions):
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(count):
        producer.produce(topic, value=f"{topic}-{i}".encode(), partition=i % partitions)
    assert producer.flush(30) == 0


def create_topic(broker, name, partitions):
    admin(broker).create_topics([NewTopic(name, partitions, 1)])[name].result(30)


# --- No broker: the rules and the decoder ----------------------------------------------------------------

def test_java_string_hash_and_kafkas_partition_rule():
    # Values from OpenJDK 17 (jshell: "billing".hashCode() and so on).
    java = {"": 0, "a": 97, "billing": -109829509, "payments": 1382682413, "my-group": -1906497762,
            "polygenelubricants": -2147483648, "grüße-€": 426799350, "emoji-😀": 1164511306}
    assert {text: java_string_hash(text) for text in java} == java
    # Kafka's Utils.abs(hash) % partitions, as Java computes it for 16 and 50 partitions.
    assert offsets_partition_for("billing") == 5  # hash & 0x7fffffff would give 11: not Kafka's rule
    assert offsets_partition_for("payments") == 13
    assert offsets_partition_for("my-group", 50) == 12
    assert offsets_partition_for("polygenelubricants") == 0  # Integer.MIN_VALUE: Utils.abs gives 0
    assert offsets_partition_for("emoji-😀") == 10  # a surrogate pair counts as two UTF-16 units


def test_the_decoder_reads_kafka_records_built_by_hand_from_the_schemas():
    def string(text):
        data = text.encode()
        return struct.pack(">h", len(data)) + data

    # OffsetCommitKey v1: int16 version, string group, string topic, int32 partition. The group's length is
    # its UTF-8 length (11 bytes for 7 characters).
    key = b"\x00\x01" + b"\x00\x0bgr\xc3\xbc\xc3\x9fe-\xe2\x82\xac" + b"\x00\x06orders" + b"\x00\x00\x00\x02"
    assert decode_key(key) == OffsetCommitKey(1, "grüße-€", "orders", 2)
    # OffsetCommitValue v3: int16 version, int64 offset, int32 leader epoch, string metadata, int64 commit time.
    value = (b"\x00\x03" + b"\x00\x00\x00\x00\x00\x00\x00\x2a" + b"\xff\xff\xff\xff" + b"\x00\x07batch-7"
             + struct.pack(">q", 1_700_000_000_123))
    assert decode_offset_value(value) == OffsetCommitValue(3, 42, -1, "batch-7", 1_700_000_000_123)
    assert decode_offset_value(None) is None  # a tombstone
    # GroupMetadataKey v2: int16 version, string group.
    assert decode_key(b"\x00\x02" + string("billing")) == GroupMetadataKey(2, "billing")

    # GroupMetadataValue v3 with two members, one of them static; their subscription and assignment are the
    # consumer protocol's, as bytes.
    subscription = struct.pack(">hi", 0, 1) + string("orders") + struct.pack(">i", -1)
    assignment = struct.pack(">hi", 0, 1) + string("orders") + struct.pack(">iii", 2, 0, 1) + struct.pack(">i", -1)
    member = (string("worker-1-3f2a") + struct.pack(">h", -1) + string("worker-1") + string("/127.0.0.1")
              + struct.pack(">ii", 300_000, 45_000) + struct.pack(">i", len(subscription)) + subscription
              + struct.pack(">i", len(assignment)) + assignment)
    static = (string("worker-2-77c0") + string("instance-2") + string("worker-2") + string("/127.0.0.1")
              + struct.pack(">ii", 60_000, 10_000) + struct.pack(">i", 0) + struct.pack(">i", 0))
    group = (struct.pack(">h", 3) + string("consumer") + struct.pack(">i", 4) + string("range")
             + string("worker-1-3f2a") + struct.pack(">q", 1_700_000_000_999) + struct.pack(">i", 2) + member + static)
    decoded = decode_group_metadata_value(group)
    assert (decoded.version, decoded.protocol_type, decoded.generation, decoded.protocol, decoded.leader,
            decoded.current_state_timestamp) == (3, "consumer", 4, "range", "worker-1-3f2a", 1_700_000_000_999)
    assert decoded.members[0] == Member("worker-1-3f2a", None, "worker-1", "/127.0.0.1", 300_000, 45_000,
                                        subscription, assignment)
    assert decoded.members[1] == Member("worker-2-77c0", "instance-2", "worker-2", "/127.0.0.1", 60_000, 10_000, b"", b"")
    assert decode_subscription_topics(decoded.members[0].subscription) == ["orders"]
    assert decode_assignment(decoded.members[0].assignment) == {"orders": [0, 1]}
    # An emptied group: no protocol, no leader, no members.
    empty = struct.pack(">h", 3) + string("consumer") + struct.pack(">ihhqi", 5, -1, -1, 1_700_000_001_000, 0)
    assert decode_group_metadata_value(empty) == GroupMetadataValue(3, "consumer", 5, None, None, 1_700_000_001_000, ())

    # Anything else is refused, not guessed at.
    for bad_key in (key[:-1], key + b"\x00", b"\x00\x05" + key[2:]):
        with pytest.raises(ValueError):
            decode_key(bad_key)
    for bad_value in (value[:-1], value + b"\x00", b"\x00\x01" + value[2:]):
        with pytest.raises(ValueError):
            decode_offset_value(bad_value)
    with pytest.raises(ValueError):
        decode_group_metadata_value(group[:-1])


# --- Against the broker ----------------------------------------------------------------------------------

def test_metadata_reports_an_internal_topic_with_sixteen_partitions(broker):
    create_topic(broker, "orders", 3)
    assert offsets_topic_partitions(broker) == DEFAULT_PARTITIONS
    # confluent-kafka's list_topics (TopicMetadata) has no is_internal; describe_topics has.
    described = admin(broker).describe_topics(TopicCollection([OFFSETS_TOPIC, "orders"]))
    offsets_topic, orders = described[OFFSETS_TOPIC].result(30), described["orders"].result(30)
    assert offsets_topic.is_internal and len(offsets_topic.partitions) == DEFAULT_PARTITIONS
    assert not orders.is_internal
    kafka_admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        by_name = {t["name"]: t for t in kafka_admin.describe_topics([OFFSETS_TOPIC, "orders"])}
    finally:
        kafka_admin.close()
    assert by_name[OFFSETS_TOPIC]["error_code"] == 0 and by_name[OFFSETS_TOPIC]["is_internal"] is True
    assert len(by_name[OFFSETS_TOPIC]["partitions"]) == DEFAULT_PARTITIONS
    assert by_name["orders"]["is_internal"] is False


def test_the_partition_count_is_a_setting_and_groups_spread_by_it():
    with tempfile.TemporaryDirectory(prefix="petrel-offsets-topic-") as tmp:
        broker = BrokerProcess(f"{tmp}/data", ["--offsets-topic-num-partitions", "5"]).start()
        try:
            create_topic(broker, "orders", 1)
            assert offsets_topic_partitions(broker) == 5
            groups = ["billing", "payments", "my-group", "inventory", "audit"]
            for group in groups:
                commit(broker.bootstrap, group, {("orders", 0): 1})
            where = {decode_key(r.key).group: r.partition for r in read_offsets_topic(broker)}
            kafka = {group: offsets_partition_for(group, 5) for group in groups}
            assert where == kafka, f"groups in partitions {where}; Kafka's rule, {RULE}, puts them in {kafka}"
        finally:
            assert broker.stop() == 0, broker.log()


def test_a_commit_is_an_offset_commit_record_in_the_groups_partition(broker):
    create_topic(broker, "orders", 3)
    produce(broker.bootstrap, "orders", 60, 3)
    # Three groups: a negative hash ("billing"), a positive one, and a name that is not ASCII. "billing"
    # commits partition 0 twice: its first commit stays in the log, the second is the latest value.
    commit(broker.bootstrap, "billing", {("orders", 0): 5})
    committed = {
        "billing": {("orders", 0): 12, ("orders", 1): (7, "batch-7")},
        "payments": {("orders", 2): 20},
        "grüße-€": {("orders", 1): 3},
    }
    before = time.time() * 1000
    for group, offsets in committed.items():
        commit(broker.bootstrap, group, offsets)
    after = time.time() * 1000

    records = read_offsets_topic(broker)
    # kcat reads the same records, byte for byte.
    assert sorted(kcat_offsets_topic(broker), key=lambda r: (r.partition, r.offset)) == \
        sorted(records, key=lambda r: (r.partition, r.offset))
    latest = latest_by_key(records)
    for group, offsets in committed.items():
        home = offsets_partition_for(group)
        for (topic, partition), offset in offsets.items():
            offset, metadata = offset if isinstance(offset, tuple) else (offset, "")
            key = OffsetCommitKey(1, group, topic, partition)
            assert key in latest, f"no OffsetCommitKey v1 for {group}/{topic}/{partition} in {OFFSETS_TOPIC}"
            assert latest[key].partition == home, \
                f"{group}'s commit is in partition {latest[key].partition}; Kafka's rule, {RULE}, says {home}"
            value = decode_offset_value(latest[key].value)
            assert (value.version, value.offset) == (3, offset)
            # confluent-kafka sends the metadata with its C string's terminating NUL; the broker keeps the bytes.
            assert value.metadata in (metadata, metadata + "\0"), value.metadata
            assert before - 60_000 <= value.commit_timestamp <= after + 60_000, "commit timestamp not within a minute of now"
    # Every offset commit record of a group is in the group's partition, the earlier commit of billing's
    # partition 0 included.
    for record in records:
        key = decode_key(record.key)
        if isinstance(key, OffsetCommitKey) and key.group in committed:
            assert record.partition == offsets_partition_for(key.group), (key, record.partition)
    first = [decode_offset_value(r.value).offset for r in records
             if decode_key(r.key) == OffsetCommitKey(1, "billing", "orders", 0)]
    assert first == [5, 12]


def test_offset_delete_and_delete_groups_leave_tombstones(broker):
    create_topic(broker, "orders", 3)
    produce(broker.bootstrap, "orders", 30, 3)
    commit(broker.bootstrap, "pruned", {("orders", 0): 4, ("orders", 1): 6})
    commit(broker.bootstrap, "retired", {("orders", 0): 1, ("orders", 1): 2, ("orders", 2): 3})

    # OffsetDelete (kafka-python) for one partition of "pruned".
    kafka_admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        result = kafka_admin.delete_group_offsets("pruned", [KPTopicPartition("orders", 0)])
    finally:
        kafka_admin.close()
    assert [error.__name__ for error in result.values()] == ["NoError"]
    # DeleteGroups (confluent-kafka) for "retired".
    admin(broker).delete_consumer_groups(["retired"], request_timeout=10)["retired"].result(30)

    for records in (read_offsets_topic(broker), kcat_offsets_topic(broker)):
        latest = latest_by_key(records)
        pruned = latest[OffsetCommitKey(1, "pruned", "orders", 0)]
        assert pruned.value is None, f"no tombstone for pruned/orders/0: {pruned}"
        assert pruned.partition == offsets_partition_for("pruned"), f"{pruned.partition}: not Kafka's partition ({RULE})"
        assert decode_offset_value(latest[OffsetCommitKey(1, "pruned", "orders", 1)].value).offset == 6
        for partition in range(3):
            retired = latest[OffsetCommitKey(1, "retired", "orders", partition)]
            assert retired.value is None, f"no tombstone for retired/orders/{partition}: {retired}"
            assert retired.partition == offsets_partition_for("retired"), \
                f"{retired.partition}: not Kafka's partition ({RULE})"
        # A deleted group's metadata, if it ever had any, ends with a tombstone too.
        group_key = GroupMetadataKey(2, "retired")
        assert group_key not in latest or latest[group_key].value is None


def test_a_groups_membership_is_a_group_metadata_record(broker):
    create_topic(broker, "meta-orders", 2)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "metadata-group",
                         "client.id": "metadata-worker", "partition.assignment.strategy": "range",
                         "session.timeout.ms": 6000, "max.poll.interval.ms": 20000, "enable.auto.commit": False})
    closed = False
    try:
        consumer.subscribe(["meta-orders"])
        deadline = time.time() + 30
        while len(consumer.assignment()) < 2:
            assert time.time() < deadline, "the consumer was not assigned both partitions in 30 s"
            consumer.poll(0.2)
        member_id = consumer.memberid()
        before = time.time() * 1000

        def group_record():
            record = latest_by_key(read_offsets_topic(broker)).get(GroupMetadataKey(2, "metadata-group"))
            return record if record and decode_group_metadata_value(record.value).members else None
        record = wait_until(group_record, timeout=15, interval=0.5, what="a GroupMetadata record with the member")
        assert record.partition == offsets_partition_for("metadata-group")
        group = decode_group_metadata_value(record.value)
        assert (group.protocol_type, group.protocol, group.leader) == ("consumer", "range", member_id)
        assert group.generation >= 1
        assert abs(group.current_state_timestamp - before) < 60_000
        [member] = group.members
        assert (member.member_id, member.group_instance_id, member.client_id) == (member_id, None, "metadata-worker")
        assert "127.0.0.1" in member.client_host
        assert (member.session_timeout, member.rebalance_timeout) == (6000, 20000)
        assert decode_subscription_topics(member.subscription) == ["meta-orders"]
        assert {t: sorted(p) for t, p in decode_assignment(member.assignment).items()} == {"meta-orders": [0, 1]}

        # The only member leaves: Kafka records the emptied group, a generation later, with no protocol,
        # leader or members.
        consumer.close()
        closed = True

        def emptied():
            latest = latest_by_key(read_offsets_topic(broker))[GroupMetadataKey(2, "metadata-group")]
            value = decode_group_metadata_value(latest.value)
            return value if value is not None and not value.members else None
        empty = wait_until(emptied, timeout=15, interval=0.5, what="a GroupMetadata record of the emptied group")
        assert empty.generation > group.generation
        assert (empty.protocol_type, empty.protocol, empty.leader) == ("consumer", None, None)
    finally:
        if not closed:
            consumer.close()


def test_produce_to_the_offsets_topic_is_refused(broker):
    create_topic(broker, "orders", 1)
    commit(broker.bootstrap, "billing", {("orders", 0): 0})
    home = offsets_partition_for("billing")
    reader = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "offsets-topic-reader"})
    try:
        end_before = reader.get_watermark_offsets(TopicPartition(OFFSETS_TOPIC, home), timeout=10)[1]
        # A forged commit: billing's key, a value moving it to offset 1000.
        key = struct.pack(">hh", 1, 7) + b"billing" + struct.pack(">h", 6) + b"orders" + struct.pack(">i", 0)
        value = struct.pack(">hqih", 3, 1000, -1, 0) + struct.pack(">q", int(time.time() * 1000))
        errors = []
        producer = Producer({"bootstrap.servers": broker.bootstrap, "message.timeout.ms": 10_000, "retries": 0})
        producer.produce(OFFSETS_TOPIC, key=key, value=value, partition=home,
                         on_delivery=lambda error, message: errors.append(error))
        producer.flush(30)
        assert len(errors) == 1 and errors[0] is not None, f"the produce to {OFFSETS_TOPIC} was accepted"
        assert errors[0].code() == KafkaError.TOPIC_EXCEPTION, errors[0]  # INVALID_TOPIC_EXCEPTION, 17
        assert reader.get_watermark_offsets(TopicPartition(OFFSETS_TOPIC, home), timeout=10)[1] == end_before
    finally:
        reader.close()
    checker = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "billing", "enable.auto.commit": False})
    try:
        assert checker.committed([TopicPartition("orders", 0)], timeout=10)[0].offset == 0
    finally:
        checker.close()


# --- Burrow ----------------------------------------------------------------------------------------------

BURROW_GROUP = "burrow-billing"
BURROW_TOPIC = "burrow-orders"


class SteadyProducer:
    """Writes to every partition of a topic, round robin, about `rate` records a second, until stopped."""

    def __init__(self, bootstrap, topic, partitions, rate=40):
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        self.topic, self.partitions, self.rate = topic, partitions, rate
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        i = 0
        while not self.stopping.is_set():
            self.producer.produce(self.topic, value=b"order-%d" % i, partition=i % self.partitions)
            self.producer.poll(0)
            i += 1
            self.stopping.wait(1 / self.rate)

    def stop(self):
        if not self.stopping.is_set():
            self.stopping.set()
            self.thread.join(10)
            assert self.producer.flush(30) == 0


def commit_positions(consumer, positions):
    """The group's commit: the application's positions, synchronously."""
    consumer.commit(offsets=[TopicPartition(BURROW_TOPIC, p, o) for p, o in positions.items()], asynchronous=False)


def petrel_lag(broker, group):
    """{(topic, partition): lag} from `petrel groups describe`'s table (TOPIC PARTITION COMMITTED LOG-END LAG)."""
    out = petrel("groups", "describe", "--bootstrap", broker.bootstrap, group)
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["TOPIC"])
    assert lines[header].split() == ["TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG"], out
    rows = [line.split() for line in lines[header + 1:] if line.strip()]
    return {(row[0], int(row[1])): int(row[4]) for row in rows}


def burrow_lag(burrow, group):
    status = burrow.lag(group)
    return {(p["topic"], p["partition"]): p["current_lag"] for p in status["partitions"]} if status else None


def test_burrow_reports_the_lag_petrel_prints_and_flags_a_group_that_stops_committing(broker):
    """Burrow learns of groups only from `__consumer_offsets`. A producer writes steadily; the group commits
    every second and Burrow calls it OK; the group stops committing and Burrow flags it (in about 3 s with
    a window of 3 commits); the producer stops and Burrow's lag per partition is petrel's. About 10 s."""
    create_topic(broker, BURROW_TOPIC, 2)
    with tempfile.TemporaryDirectory(prefix="petrel-burrow-") as tmp, \
            burrow_and_zookeeper(tmp, broker.bootstrap, intervals=3, min_distance=0) as burrow:
        # Burrow drops commits for partitions whose log end it has not fetched yet: wait for both topics.
        wait_until(lambda: burrow.topic_offsets(BURROW_TOPIC) and burrow.topic_offsets(OFFSETS_TOPIC), timeout=30,
                   what=f"Burrow to fetch the log ends of {BURROW_TOPIC} and {OFFSETS_TOPIC}")
        assert len(burrow.topic_offsets(OFFSETS_TOPIC)) == DEFAULT_PARTITIONS, burrow.topic_offsets(OFFSETS_TOPIC)
        assert burrow.offsets_partitions_read() == DEFAULT_PARTITIONS, \
            f"Burrow does not read all {DEFAULT_PARTITIONS} partitions of {OFFSETS_TOPIC}:\n{burrow.problems()}"

        producer = SteadyProducer(broker.bootstrap, BURROW_TOPIC, 2).start()
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": BURROW_GROUP, "enable.auto.commit": False})
        consumer_open = True
        try:
            # Healthy: the application keeps up and commits its positions every second, until Burrow has a
            # full window (3 commits) for both partitions and calls the group OK.
            consumer.assign([TopicPartition(BURROW_TOPIC, p, OFFSET_BEGINNING) for p in range(2)])
            positions = {0: 0, 1: 0}
            status, deadline = None, time.time() + 45
            while not (status and status["status"] == "OK" and status["partition_count"] == 2 and status["complete"] == 1.0):
                assert time.time() < deadline, \
                    f"Burrow never called {BURROW_GROUP} OK with a full window: {status}\n{burrow.problems()}"
                until = time.time() + 1.0
                while time.time() < until:
                    for message in consumer.consume(500, 0.1):
                        if not message.error():
                            positions[message.partition()] = message.offset() + 1
                commit_positions(consumer, positions)
                status = burrow.lag(BURROW_GROUP)
            assert BURROW_GROUP in burrow.consumers()

            # The application stops committing (it goes away); the producer goes on. Burrow's rules: no commit
            # for longer than the window spans while the lag grows is STOP (group status ERR); commits that no
            # longer move would be STALL, a lag that only grows WARN.
            consumer.close()
            consumer_open = False
            final_positions = dict(positions)

            def flagged():
                answer = burrow.lag(BURROW_GROUP)
                return answer if answer and answer["status"] in ("WARN", "ERR") else None
            try:
                status = wait_until(flagged, timeout=30, interval=0.5, what=f"Burrow to flag {BURROW_GROUP}")
            except AssertionError:
                raise AssertionError(
                    f"Burrow did not flag {BURROW_GROUP}: {burrow.lag(BURROW_GROUP)}\n{burrow.problems()}") from None
            assert {p["status"] for p in status["partitions"]} <= {"OK", "WARN", "STOP", "STALL"}, status
            assert any(p["status"] in ("WARN", "STOP", "STALL") for p in status["partitions"]), status
        finally:
            producer.stop()
            if consumer_open:
                consumer.close()

        # Quiet: the producer has stopped. Once Burrow has fetched the final log ends, its lag per partition
        # is what `petrel groups describe` prints, and what a client computes.
        watermarks = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "burrow-lag-check"})
        try:
            ends = {p: watermarks.get_watermark_offsets(TopicPartition(BURROW_TOPIC, p), timeout=10)[1] for p in range(2)}
        finally:
            watermarks.close()
        expected = {(BURROW_TOPIC, p): ends[p] - final_positions[p] for p in range(2)}
        assert all(lag > 0 for lag in expected.values()), expected
        assert petrel_lag(broker, BURROW_GROUP) == expected
        try:
            wait_until(lambda: burrow_lag(burrow, BURROW_GROUP) == expected, timeout=20, interval=0.5,
                       what="Burrow's lag to settle")
        except AssertionError:
            raise AssertionError(f"Burrow's lag {burrow_lag(burrow, BURROW_GROUP)} is not petrel's {expected}"
                                 f" (log ends Burrow fetched: {burrow.topic_offsets(BURROW_TOPIC)})\n{burrow.problems()}"
                                 ) from None
        assert burrow.lag(BURROW_GROUP)["totallag"] == sum(expected.values())
