import Logging
import NIOCore
import PetrelProtocol
import PetrelStorage
import Synchronization

/// A committed consumer offset.
public struct CommittedOffset: Hashable, Sendable {
    public var offset: Int64
    public var leaderEpoch: Int32
    public var metadata: String?
    public var commitTimestamp: Int64

    public init(offset: Int64, leaderEpoch: Int32 = -1, metadata: String? = nil, commitTimestamp: Int64) {
        self.offset = offset
        self.leaderEpoch = leaderEpoch
        self.metadata = metadata
        self.commitTimestamp = commitTimestamp
    }
}

/// Committed offsets, kept in memory and made durable as Kafka makes them: records in the internal topic
/// `__consumer_offsets` (Kafka's OffsetCommitKey/Value, see `OffsetsTopicRecord`), each group in the
/// partition Kafka would choose for it, a deletion as a tombstone. The topic is compacted by the log
/// cleaner like any `cleanup.policy=compact` topic, and clients may read it (Burrow does). It is created
/// at start if missing, the offsets of an older data directory are moved into it once, and it is
/// replayed into memory. Thread-safe.
final class OffsetStore: Sendable {
    static let topic = TopicName.consumerOffsets
    /// Kafka's offsets.topic.segment.bytes: small segments, so the cleaner can compact all but the newest.
    static let segmentBytes = 100 * 1024 * 1024

    private let logs: LogManager
    private let partitions: [PartitionLog]
    private let logger: Logger
    private let offsets: Mutex<[String: [TopicPartition: CommittedOffset]]>

    /// Opens (or creates, with `partitionCount` partitions) the topic, moves a legacy log's offsets into
    /// it, and replays it. An existing topic keeps its partition count, whatever `partitionCount` says.
    init(logs: LogManager, partitionCount: Int, logger: Logger) throws {
        self.logs = logs
        self.logger = logger
        if logs.topic(named: Self.topic) == nil {
            _ = try logs.createTopic(
                name: Self.topic,
                partitionCount: partitionCount,
                configOverrides: ["cleanup.policy": "compact", "segment.bytes": "\(Self.segmentBytes)"],
                allowInternal: true
            )
        }
        guard let partitions = logs.partitions(topic: Self.topic) else { throw TopicError.unknownTopic(Self.topic) }
        self.partitions = partitions
        self.offsets = Mutex([:])
        try migrateLegacyLog()
        let replayed = try Self.replay(partitions)
        offsets.withLock { $0 = replayed }
    }

    /// The offsets of an older data directory's own log, written into the topic and made durable before
    /// that log is removed.
    private func migrateLegacyLog() throws {
        guard
            let legacy = try LegacyOffsetLog.read(
                dataDirectory: logs.directory,
                config: logs.defaults,
                logger: logger,
                files: logs.files
            )
        else { return }
        var moved = 0
        for (group, committed) in legacy.sorted(by: { $0.key < $1.key }) {
            let entries = committed.sorted { $0.key < $1.key }.map { (group, $0.key, Optional($0.value)) }
            for chunk in stride(from: 0, to: entries.count, by: 1000) {
                try appendWithoutWaiting(Self.records(Array(entries[chunk..<min(chunk + 1000, entries.count)])))
            }
            moved += entries.count
        }
        for log in partitions { try log.flushNow() }
        try LegacyOffsetLog.remove(dataDirectory: logs.directory)
        logger.info(
            "moved committed offsets into the __consumer_offsets topic",
            metadata: ["groups": "\(legacy.count)", "offsets": "\(moved)"]
        )
    }

    /// Rebuilds the offsets from the topic, later records winning.
    private static func replay(_ partitions: [PartitionLog]) throws -> [String: [TopicPartition: CommittedOffset]] {
        var offsets: [String: [TopicPartition: CommittedOffset]] = [:]
        for log in partitions {
            try log.forEachRecord { batch, record in
                // Control batches (transaction markers) carry no offsets.
                guard !batch.header.attributes.isControl, var key = record.key,
                    case .offsetCommit(let group, let partition)? = try? OffsetsTopicRecord.decodeKey(&key)
                else { return }
                let committed = record.value.flatMap { value in
                    var value = value
                    return try? OffsetsTopicRecord.decodeOffsetCommitValue(&value)
                }
                offsets.set(group, partition, committed)
            }
        }
        return offsets
    }

    // MARK: - Reading

    func committed(group: String) -> [TopicPartition: CommittedOffset] {
        offsets.withLock { $0[group] ?? [:] }
    }

    func committed(group: String, partition: TopicPartition) -> CommittedOffset? {
        offsets.withLock { $0[group]?[partition] }
    }

    var groups: [String] { offsets.withLock { Array($0.keys) } }

    /// Every group's committed offsets (for metrics).
    var allCommitted: [String: [TopicPartition: CommittedOffset]] { offsets.withLock { $0 } }

    func hasOffsets(group: String) -> Bool { offsets.withLock { $0[group] != nil } }

    /// The partition of `__consumer_offsets` that holds a group's records.
    func partition(ofGroup group: String) -> Int32 {
        OffsetsTopicRecord.partition(ofGroup: group, partitionCount: partitions.count)
    }

    // MARK: - Writing

    /// Durably records the commits (per the broker's flush policy), then makes them visible.
    func commit(group: String, _ commits: [TopicPartition: CommittedOffset]) async throws {
        guard !commits.isEmpty else { return }
        // Kafka's records have no null metadata: none is the empty string, before and after a restart.
        let commits = commits.mapValues { committed in
            var committed = committed
            committed.metadata = committed.metadata ?? ""
            return committed
        }
        try await append(commits.sorted { $0.key < $1.key }.map { (group, $0.key, $0.value) })
        offsets.withLock { offsets in
            for (partition, committed) in commits { offsets.set(group, partition, committed) }
        }
    }

    /// Which protocol a group speaks, so that its deletion tombstones the metadata record it has.
    enum GroupKind {
        case classic
        case consumer
    }

    /// Deletes every offset of a group and its metadata (DeleteGroups). A group known only by its
    /// offsets (after a restart) may have either kind of metadata record: both get a tombstone.
    func deleteGroup(_ group: String, kind: GroupKind? = nil) async throws {
        let doomed = committed(group: group).keys.sorted().map { (group, $0, CommittedOffset?.none) }
        var metadata: [ByteBuffer] = []
        if kind != .consumer { metadata.append(OffsetsTopicRecord.groupMetadataKey(group: group)) }
        if kind != .classic { metadata.append(OffsetsTopicRecord.consumerGroupMetadataKey(group: group)) }
        try await append(Self.records(doomed) + metadata.map { Entry(group: group, key: $0, value: nil) })
        offsets.withLock { $0[group] = nil }
    }

    /// Records a classic group's generation, members and assignment as Kafka does when the group
    /// stabilizes or empties, for tools that read the topic. Not replayed (members rejoin after a
    /// restart) and not waited on: a failure is logged, never fails the group.
    func storeGroup(_ group: String, _ metadata: OffsetsTopicRecord.GroupMetadata) {
        storeGroupRecords(
            group,
            [(OffsetsTopicRecord.groupMetadataKey(group: group), OffsetsTopicRecord.groupMetadataValue(metadata))]
        )
    }

    /// Records what changed in a consumer-protocol group between two of its states, as Kafka does: the
    /// group epoch, each member's metadata and current assignment, tombstones for members that left.
    /// Like `storeGroup`, for readers of the topic, not replayed and not waited on.
    func storeConsumerGroup(_ group: String, before: ConsumerGroup?, after: ConsumerGroup) {
        var records: [(ByteBuffer, ByteBuffer?)] = []
        if after.groupEpoch != before?.groupEpoch {
            records.append(
                (
                    OffsetsTopicRecord.consumerGroupMetadataKey(group: group),
                    OffsetsTopicRecord.consumerGroupMetadataValue(epoch: after.groupEpoch)
                )
            )
        }
        let topicIDs = { (topic: String) in self.logs.topic(named: topic)?.id }
        for (id, member) in after.members.sorted(by: { $0.key < $1.key }) {
            let old = before?.members[id]
            if old.map({ !member.hasSameMetadata(as: $0) }) ?? true {
                records.append(
                    (
                        OffsetsTopicRecord.consumerGroupMemberMetadataKey(group: group, member: id),
                        OffsetsTopicRecord.consumerGroupMemberMetadataValue(member)
                    )
                )
            }
            if old.map({ !member.hasSameAssignment(as: $0) }) ?? true {
                records.append(
                    (
                        OffsetsTopicRecord.consumerGroupCurrentAssignmentKey(group: group, member: id),
                        OffsetsTopicRecord.consumerGroupCurrentAssignmentValue(member, topicIDs: topicIDs)
                    )
                )
            }
        }
        let departed = (before?.members.keys).map(Array.init)?.filter { after.members[$0] == nil } ?? []
        storeGroupRecords(group, records + Self.departureRecords(group, departed))
    }

    /// Records members whose sessions expired: the group's new epoch and tombstones for their records.
    /// (Expiry changes nothing else; the others' assignments move at their next heartbeat.)
    func storeConsumerGroupDepartures(_ group: String, _ members: [String], epoch: Int32) {
        let metadata = (
            OffsetsTopicRecord.consumerGroupMetadataKey(group: group),
            Optional(OffsetsTopicRecord.consumerGroupMetadataValue(epoch: epoch))
        )
        storeGroupRecords(group, [metadata] + Self.departureRecords(group, members))
    }

    private static func departureRecords(_ group: String, _ members: [String]) -> [(ByteBuffer, ByteBuffer?)] {
        members.sorted().flatMap { id -> [(ByteBuffer, ByteBuffer?)] in
            [
                (OffsetsTopicRecord.consumerGroupMemberMetadataKey(group: group, member: id), nil),
                (OffsetsTopicRecord.consumerGroupCurrentAssignmentKey(group: group, member: id), nil),
            ]
        }
    }

    private func storeGroupRecords(_ group: String, _ records: [(ByteBuffer, ByteBuffer?)]) {
        guard !records.isEmpty else { return }
        do {
            try appendWithoutWaiting(records.map { Entry(group: group, key: $0.0, value: $0.1) })
        } catch {
            logger.warning("recording group metadata failed", metadata: ["group": "\(group)", "error": "\(error)"])
        }
    }

    /// Deletes a group's offsets for some partitions (OffsetDelete).
    func deleteOffsets(group: String, _ partitions: [TopicPartition]) async throws {
        let doomed = partitions.filter { committed(group: group, partition: $0) != nil }.sorted()
            .map { (group, $0, CommittedOffset?.none) }
        try await append(doomed)
        offsets.withLock { offsets in
            for partition in partitions { offsets.set(group, partition, nil) }
        }
    }

    /// Deletes every group's offsets for a topic (the topic was deleted).
    func deleteTopic(_ topic: String) async throws {
        let doomed = offsets.withLock { offsets in
            offsets.sorted { $0.key < $1.key }.flatMap { group, partitions in
                partitions.keys.filter { $0.topic == topic }.sorted().map { (group, $0, CommittedOffset?.none) }
            }
        }
        try await append(doomed)
        offsets.withLock { offsets in
            for (group, partition, _) in doomed { offsets.set(group, partition, nil) }
        }
    }

    /// One record for the topic: its group decides the partition.
    private struct Entry {
        var group: String
        var key: ByteBuffer
        var value: ByteBuffer?
    }

    private static func records(_ offsets: [(String, TopicPartition, CommittedOffset?)]) -> [Entry] {
        offsets.map { group, partition, committed in
            Entry(
                group: group,
                key: OffsetsTopicRecord.offsetCommitKey(group: group, partition),
                value: committed.map(OffsetsTopicRecord.offsetCommitValue)
            )
        }
    }

    private func append(_ offsets: [(String, TopicPartition, CommittedOffset?)]) async throws {
        try await append(Self.records(offsets))
    }

    /// Appends the entries, one batch per partition of the topic they fall in, and waits until they are
    /// durable if the topic's flush policy says so.
    private func append(_ entries: [Entry]) async throws {
        for (log, lastOffset) in try appendWithoutWaiting(entries) where log.config.flushPolicy == .always {
            try await log.waitUntilDurable(through: lastOffset)
        }
    }

    @discardableResult
    private func appendWithoutWaiting(_ entries: [Entry]) throws -> [(PartitionLog, Int64)] {
        guard !entries.isEmpty else { return [] }
        let byPartition = Dictionary(grouping: entries) { partition(ofGroup: $0.group) }
        let now = wallClockMillis()
        return try byPartition.keys.sorted().map { index in
            var builder = RecordBatchBuilder()
            for entry in byPartition[index]! {
                builder.append(key: entry.key, value: entry.value, timestamp: now)
            }
            let batch = try builder.build()
            let log = partitions[Int(index)]
            let appended = try log.append(batch, header: try RecordBatchValidator.validateProduced(batch), now: now)
            return (log, appended.lastOffset)
        }
    }
}

extension [String: [TopicPartition: CommittedOffset]] {
    /// Sets a group's committed offset for a partition, or deletes it (nil), forgetting a group left
    /// with none.
    mutating func set(_ group: String, _ partition: TopicPartition, _ committed: CommittedOffset?) {
        if let committed {
            self[group, default: [:]][partition] = committed
        } else {
            self[group]?[partition] = nil
            if self[group]?.isEmpty == true { self[group] = nil }
        }
    }
}
