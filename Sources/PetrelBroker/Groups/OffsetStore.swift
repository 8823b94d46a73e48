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

/// Committed offsets, kept in memory and made durable in an internal log (`<data>/__consumer_offsets`,
/// a partition log like any other, not a topic clients can see) that is replayed at start. Each commit
/// is one record batch; a deletion is a record with a null value. Thread-safe.
///
/// Record layout (all big-endian):
///
///     key:   int16 version = 1, string group, string topic, int32 partition
///     value: int16 version = 1, int64 offset, int32 leader epoch, nullable string metadata,
///            int64 commit timestamp            (null value: the offset was deleted)
final class OffsetStore: Sendable {
    static let folderName = "__consumer_offsets"
    private let log: PartitionLog
    private let offsets: Mutex<[String: [TopicPartition: CommittedOffset]]>

    init(dataDirectory: String, config: LogConfig, cleanShutdown: Bool, logger: Logger) throws {
        self.log = try PartitionLog(
            directory: dataDirectory + "/" + Self.folderName, topic: Self.folderName, partition: 0, config: config,
            cleanShutdown: cleanShutdown, logger: logger)
        self.offsets = Mutex(try Self.replay(log))
    }

    /// Rebuilds the offsets from the log, later records winning.
    private static func replay(_ log: PartitionLog) throws -> [String: [TopicPartition: CommittedOffset]] {
        var offsets: [String: [TopicPartition: CommittedOffset]] = [:]
        var next = log.logStartOffset
        while next < log.logEndOffset {
            guard let slice = try log.read(from: next, maxBytes: 1 << 20).slice else { break }
            for batch in try RecordBatchDecoder.decodeBatches(try slice.readBytes()) {
                for record in batch.records where record.offset >= next {
                    guard var key = record.key, let (group, partition) = try? decodeKey(&key) else { continue }
                    if var value = record.value, let committed = try? decodeValue(&value) {
                        offsets[group, default: [:]][partition] = committed
                    } else {
                        offsets[group]?[partition] = nil
                        if offsets[group]?.isEmpty == true { offsets[group] = nil }
                    }
                }
                next = batch.header.nextOffset
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

    func hasOffsets(group: String) -> Bool { offsets.withLock { $0[group] != nil } }

    // MARK: - Writing

    /// Durably records the commits (per the broker's flush policy), then makes them visible.
    func commit(group: String, _ commits: [TopicPartition: CommittedOffset]) async throws {
        guard !commits.isEmpty else { return }
        try await append(commits.sorted { $0.key < $1.key }.map { (group, $0.key, $0.value) })
        offsets.withLock { offsets in
            for (partition, committed) in commits { offsets[group, default: [:]][partition] = committed }
        }
    }

    /// Deletes every offset of a group (DeleteGroups).
    func deleteGroup(_ group: String) async throws {
        let doomed = committed(group: group).keys.sorted().map { (group, $0, CommittedOffset?.none) }
        try await append(doomed)
        offsets.withLock { $0[group] = nil }
    }

    /// Deletes every group's offsets for a topic (the topic was deleted).
    func deleteTopic(_ topic: String) async throws {
        let doomed = offsets.withLock { offsets in
            offsets.flatMap { group, partitions in
                partitions.keys.filter { $0.topic == topic }.map { (group, $0, CommittedOffset?.none) }
            }
        }
        try await append(doomed)
        offsets.withLock { offsets in
            for (group, partition, _) in doomed {
                offsets[group]?[partition] = nil
                if offsets[group]?.isEmpty == true { offsets[group] = nil }
            }
        }
    }

    private func append(_ entries: [(String, TopicPartition, CommittedOffset?)]) async throws {
        guard !entries.isEmpty else { return }
        let now = wallClockMillis()
        var builder = RecordBatchBuilder()
        for (group, partition, committed) in entries {
            builder.append(key: Self.encodeKey(group: group, partition), value: committed.map(Self.encodeValue), timestamp: now)
        }
        let batch = try builder.build()
        let header = try RecordBatchValidator.validateProduced(batch)
        let appended = try log.append(batch, header: header, now: now)
        if log.config.flushPolicy == .always { try await log.waitUntilDurable(through: appended.lastOffset) }
    }

    func close() throws {
        try log.close()
    }

    // MARK: - Encoding

    static func encodeKey(group: String, _ partition: TopicPartition) -> ByteBuffer {
        var key = ByteBuffer()
        key.writeInteger(Int16(1))
        key.writeKafkaString(group, flexible: false)
        key.writeKafkaString(partition.topic, flexible: false)
        key.writeInteger(partition.partition)
        return key
    }

    static func decodeKey(_ key: inout ByteBuffer) throws -> (String, TopicPartition) {
        guard try key.readKafkaInteger(as: Int16.self) == 1 else { throw ProtocolError(.invalidValue, "offset key version") }
        let group = try key.readKafkaString(flexible: false)
        let topic = try key.readKafkaString(flexible: false)
        return (group, TopicPartition(topic, try key.readKafkaInteger()))
    }

    static func encodeValue(_ committed: CommittedOffset) -> ByteBuffer {
        var value = ByteBuffer()
        value.writeInteger(Int16(1))
        value.writeInteger(committed.offset)
        value.writeInteger(committed.leaderEpoch)
        value.writeKafkaNullableString(committed.metadata, flexible: false)
        value.writeInteger(committed.commitTimestamp)
        return value
    }

    static func decodeValue(_ value: inout ByteBuffer) throws -> CommittedOffset {
        guard try value.readKafkaInteger(as: Int16.self) == 1 else { throw ProtocolError(.invalidValue, "offset value version") }
        return CommittedOffset(
            offset: try value.readKafkaInteger(), leaderEpoch: try value.readKafkaInteger(),
            metadata: try value.readKafkaNullableString(flexible: false), commitTimestamp: try value.readKafkaInteger())
    }
}
