import Logging
import NIOCore
import PetrelProtocol
import PetrelStorage
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

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
/// is one record batch; a deletion is a record with a null value. When the log has grown well past what
/// is live, it is compacted: the live offsets are written to a fresh log that replaces it. Thread-safe.
///
/// Record layout (all big-endian):
///
///     key:   int16 version = 1, string group, string topic, int32 partition
///     value: int16 version = 1, int64 offset, int32 leader epoch, nullable string metadata,
///            int64 commit timestamp            (null value: the offset was deleted)
final class OffsetStore: Sendable {
    static let folderName = "__consumer_offsets"
    /// Compaction starts once the log is larger than this and four times larger than its live data.
    let compactionThresholdBytes: Int
    private let dataDirectory: String
    private let config: LogConfig
    private let logger: Logger
    private let metrics: StorageMetrics
    private let files: FileCache
    /// The current log; appends and compaction's swap hold this lock.
    private let log: Mutex<PartitionLog>
    private let offsets: Mutex<[String: [TopicPartition: CommittedOffset]]>

    init(
        dataDirectory: String,
        config: LogConfig,
        cleanShutdown: Bool,
        logger: Logger,
        metrics: StorageMetrics = .disabled,
        files: FileCache = .shared,
        compactionThresholdBytes: Int = 16 << 20
    ) throws {
        self.dataDirectory = dataDirectory
        self.metrics = metrics
        self.files = files
        self.config = config
        self.logger = logger
        self.compactionThresholdBytes = compactionThresholdBytes
        try Self.finishInterruptedCompaction(in: dataDirectory)
        let log = try PartitionLog(
            directory: dataDirectory + "/" + Self.folderName,
            topic: Self.folderName,
            partition: 0,
            config: config,
            cleanShutdown: cleanShutdown,
            logger: logger,
            metrics: metrics,
            files: files
        )
        self.offsets = Mutex(try Self.replay(log))
        self.log = Mutex(log)
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

    /// Every group's committed offsets (for metrics).
    var allCommitted: [String: [TopicPartition: CommittedOffset]] { offsets.withLock { $0 } }

    func hasOffsets(group: String) -> Bool { offsets.withLock { $0[group] != nil } }

    // MARK: - Writing

    /// Durably records the commits (per the broker's flush policy), then makes them visible.
    func commit(group: String, _ commits: [TopicPartition: CommittedOffset]) async throws {
        guard !commits.isEmpty else { return }
        try await append(commits.sorted { $0.key < $1.key }.map { (group, $0.key, $0.value) })
        offsets.withLock { offsets in
            for (partition, committed) in commits { offsets[group, default: [:]][partition] = committed }
        }
        do {
            try compactIfNeeded()
        } catch {
            // The commit itself is durable; a failed compaction only leaves the log larger.
            logger.error("compacting the committed-offsets log failed", metadata: ["error": "\(error)"])
        }
    }

    /// Deletes every offset of a group (DeleteGroups).
    func deleteGroup(_ group: String) async throws {
        let doomed = committed(group: group).keys.sorted().map { (group, $0, CommittedOffset?.none) }
        try await append(doomed)
        offsets.withLock { $0[group] = nil }
    }

    /// Deletes a group's offsets for some partitions (OffsetDelete).
    func deleteOffsets(group: String, _ partitions: [TopicPartition]) async throws {
        let doomed = partitions.filter { committed(group: group, partition: $0) != nil }.sorted()
            .map { (group, $0, CommittedOffset?.none) }
        try await append(doomed)
        offsets.withLock { offsets in
            for partition in partitions { offsets[group]?[partition] = nil }
            if offsets[group]?.isEmpty == true { offsets[group] = nil }
        }
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
        let batch = try Self.batch(entries, now: wallClockMillis())
        let header = try RecordBatchValidator.validateProduced(batch)
        let (target, appended) = try log.withLock { log in
            (log, try log.append(batch, header: header, now: wallClockMillis()))
        }
        if target.config.flushPolicy == .always { try await target.waitUntilDurable(through: appended.lastOffset) }
    }

    private static func batch(_ entries: [(String, TopicPartition, CommittedOffset?)], now: Int64) throws -> ByteBuffer
    {
        var builder = RecordBatchBuilder()
        for (group, partition, committed) in entries {
            builder.append(key: encodeKey(group: group, partition), value: committed.map(encodeValue), timestamp: now)
        }
        return try builder.build()
    }

    func close() throws {
        try log.withLock { try $0.close() }
    }

    var sizeInBytes: Int { log.withLock { $0.sizeInBytes } }

    // MARK: - Compaction

    /// Compacts the log if it has grown past the threshold and is mostly superseded records.
    /// Returns whether it did.
    @discardableResult
    func compactIfNeeded() throws -> Bool {
        let live = offsets.withLock { $0.values.reduce(0) { $0 + $1.count } }
        let size = sizeInBytes
        guard size > compactionThresholdBytes, size > 4 * live * 64 else { return false }
        try compact()
        return true
    }

    /// Writes every live offset to a fresh log and swaps it in. Commits wait for the swap.
    func compact() throws {
        let folder = dataDirectory + "/" + Self.folderName
        let compacting = folder + ".compacting"
        let old = folder + ".old"
        try log.withLock { current in
            let snapshot = offsets.withLock { $0 }
            try? FileManager.default.removeItem(atPath: compacting)
            let fresh = try PartitionLog(
                directory: compacting,
                topic: Self.folderName,
                partition: 0,
                config: config,
                cleanShutdown: true,
                logger: logger,
                files: self.files
            )
            let entries = snapshot.sorted { $0.key < $1.key }.flatMap { group, partitions in
                partitions.sorted { $0.key < $1.key }.map { (group, $0.key, Optional($0.value)) }
            }
            var start = 0
            while start < entries.count {
                let chunk = Array(entries[start..<min(start + 1000, entries.count)])
                let batch = try Self.batch(chunk, now: wallClockMillis())
                _ = try fresh.append(
                    batch,
                    header: try RecordBatchValidator.validateProduced(batch),
                    now: wallClockMillis()
                )
                start += chunk.count
            }
            try fresh.close()
            try current.close()
            let before = current.sizeInBytes
            try FileManager.default.moveItem(atPath: folder, toPath: old)
            try FileManager.default.moveItem(atPath: compacting, toPath: folder)
            // The swap survives a power failure before the next commit is acknowledged.
            try syncDirectory(dataDirectory)
            try? FileManager.default.removeItem(atPath: old)
            current = try PartitionLog(
                directory: folder,
                topic: Self.folderName,
                partition: 0,
                config: config,
                cleanShutdown: true,
                logger: logger,
                metrics: metrics,
                files: files
            )
            logger.info(
                "compacted the committed-offsets log",
                metadata: ["before": "\(before)", "after": "\(current.sizeInBytes)", "offsets": "\(entries.count)"]
            )
        }
    }

    /// A crash during the swap leaves one of two states; both resolve to a whole log.
    private static func finishInterruptedCompaction(in dataDirectory: String) throws {
        let files = FileManager.default
        let folder = dataDirectory + "/" + folderName
        if !files.fileExists(atPath: folder), files.fileExists(atPath: folder + ".compacting") {
            try files.moveItem(atPath: folder + ".compacting", toPath: folder)
            try syncDirectory(dataDirectory)
        }
        try? files.removeItem(atPath: folder + ".compacting")
        try? files.removeItem(atPath: folder + ".old")
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
        guard try key.readKafkaInteger(as: Int16.self) == 1 else {
            throw ProtocolError(.invalidValue, "offset key version")
        }
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
        guard try value.readKafkaInteger(as: Int16.self) == 1 else {
            throw ProtocolError(.invalidValue, "offset value version")
        }
        return CommittedOffset(
            offset: try value.readKafkaInteger(),
            leaderEpoch: try value.readKafkaInteger(),
            metadata: try value.readKafkaNullableString(flexible: false),
            commitTimestamp: try value.readKafkaInteger()
        )
    }
}
