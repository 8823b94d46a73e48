import Logging
import PetrelProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A topic as the log manager knows it.
public struct TopicDescription: Sendable, Hashable {
    public var name: String
    public var id: KafkaUUID
    public var partitionCount: Int
    /// Topic configs set at creation, overriding the broker defaults.
    public var configOverrides: [String: String]
}

public enum TopicError: Error, Hashable, Sendable {
    case invalidName(String)
    case alreadyExists(String)
    case unknownTopic(String)
    case invalidPartitions(Int)
    case invalidConfig(LogConfigError)
}

/// All partition logs under one data directory, laid out as Kafka lays out a log dir:
///
///     <data>/meta.properties             cluster id and node id
///     <data>/<topic>-<partition>/        one folder per partition: segments + partition.metadata (topic id)
///     <data>/topic-configs/<topic>.properties   per-topic config overrides, if any
///     <data>/.clean-shutdown             present only between a clean shutdown and the next start
///
/// Thread-safe.
public final class LogManager: Sendable {
    public let directory: String
    public let defaults: LogConfig
    /// Whether the previous run ended with a clean shutdown (so recovery scans were skipped).
    public let startedClean: Bool
    private let topics: Mutex<[String: Topic]>
    /// The log start offsets last written to their checkpoint; its lock also keeps two writers apart.
    private let writtenLogStartOffsets = Mutex<[TopicPartition: Int64]>([:])
    /// The cleaner offsets last written to their checkpoint, likewise.
    private let writtenCleanerOffsets = Mutex<[TopicPartition: Int64]>([:])
    private let logger: Logger
    private let metrics: StorageMetrics
    /// Where every partition's segment files are opened, at most `files.capacity` at once.
    public let files: FileCache

    final class Topic: Sendable {
        let description: TopicDescription
        let partitions: [PartitionLog]

        init(description: TopicDescription, partitions: [PartitionLog]) {
            self.description = description
            self.partitions = partitions
        }
    }

    static let cleanShutdownMarker = ".clean-shutdown"
    static let topicConfigFolder = "topic-configs"
    static let deletedSuffix = "-delete"

    public init(
        directory: String,
        defaults: LogConfig,
        logger: Logger,
        metrics: StorageMetrics = .disabled,
        files: FileCache = .shared
    ) throws {
        self.files = files
        self.directory = directory
        self.metrics = metrics
        self.defaults = defaults
        self.logger = logger
        let files = FileManager.default
        try files.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try files.createDirectory(atPath: directory + "/" + Self.topicConfigFolder, withIntermediateDirectories: true)
        let marker = directory + "/" + Self.cleanShutdownMarker
        self.startedClean = files.fileExists(atPath: marker)

        let recoveryPoints = OffsetCheckpoint.recoveryPoints.read(directory: directory)
        let logStartOffsets = OffsetCheckpoint.logStartOffsets.read(directory: directory)
        let cleanerOffsets = OffsetCheckpoint.cleanerOffsets.read(directory: directory)
        var found: [String: [Int32: String]] = [:]
        for name in try files.contentsOfDirectory(atPath: directory) {
            let path = directory + "/" + name
            if name.hasSuffix(Self.deletedSuffix) {
                try? files.removeItem(atPath: path)  // a deletion interrupted by a crash
                continue
            }
            guard let (topic, partition) = Self.parsePartitionFolder(name) else { continue }
            found[topic, default: [:]][partition] = path
        }
        var loaded: [String: Topic] = [:]
        for (name, folders) in found {
            let count = Int(folders.keys.max()! + 1)
            let overrides = try PropertiesFile.read(Self.configPath(directory, name)) ?? [:]
            let config = (try? defaults.applying(overrides)) ?? defaults
            var id: KafkaUUID?
            var partitions: [PartitionLog] = []
            for partition in 0..<Int32(count) {
                let folder = folders[partition] ?? directory + "/" + Self.folderName(name, partition)
                if folders[partition] == nil {
                    logger.warning("partition folder missing; starting it empty", metadata: ["folder": "\(folder)"])
                }
                id =
                    id
                    ?? (try? PropertiesFile.read(folder + "/partition.metadata"))?.flatMap { $0["topic_id"] }.flatMap(
                        KafkaUUID.init
                    )
                partitions.append(
                    try PartitionLog(
                        directory: folder,
                        topic: name,
                        partition: partition,
                        config: config,
                        cleanShutdown: startedClean,
                        recoveryPoint: recoveryPoints[TopicPartition(name, partition)] ?? 0,
                        logStartOffset: logStartOffsets[TopicPartition(name, partition)] ?? 0,
                        firstDirtyOffset: cleanerOffsets[TopicPartition(name, partition)] ?? 0,
                        logger: logger,
                        metrics: metrics,
                        files: self.files
                    )
                )
            }
            let topicID = id ?? KafkaUUID.random()
            for log in partitions { try Self.writePartitionMetadata(log.directory, id: topicID) }
            loaded[name] = Topic(
                description: TopicDescription(
                    name: name,
                    id: topicID,
                    partitionCount: count,
                    configOverrides: overrides
                ),
                partitions: partitions
            )
        }
        self.topics = Mutex(loaded)
        // From here on a crash is an unclean shutdown, also after a power failure: the marker's removal
        // (and any folder made above) is fsynced before anything is appended.
        if startedClean { unlinkFile(marker) }
        try syncDirectory(directory)
        logger.info(
            "loaded logs",
            metadata: ["directory": "\(directory)", "topics": "\(loaded.count)", "clean": "\(startedClean)"]
        )
    }

    // MARK: - Lookup

    public func topic(named name: String) -> TopicDescription? {
        topics.withLock { $0[name]?.description }
    }

    public var allTopics: [TopicDescription] {
        topics.withLock { $0.values.map(\.description) }.sorted { $0.name < $1.name }
    }

    public func partition(topic: String, partition: Int32) -> PartitionLog? {
        topics.withLock { topics in
            guard let logs = topics[topic]?.partitions, partition >= 0, Int(partition) < logs.count else { return nil }
            return logs[Int(partition)]
        }
    }

    public func partitions(topic: String) -> [PartitionLog]? {
        topics.withLock { $0[topic]?.partitions }
    }

    /// Every partition of every topic.
    public var allPartitions: [PartitionLog] {
        topics.withLock { $0.values.flatMap(\.partitions) }
    }

    // MARK: - Creating and deleting topics

    /// Creates a topic with `partitionCount` empty partitions. With `validateOnly` only checks that it could.
    /// Internal topics (`TopicName.isInternal`) are created by the broker only (`allowInternal`).
    @discardableResult
    public func createTopic(
        name: String,
        partitionCount: Int,
        configOverrides: [String: String] = [:],
        validateOnly: Bool = false,
        allowInternal: Bool = false
    ) throws -> TopicDescription {
        if let reason = TopicName.invalidityReason(name) { throw TopicError.invalidName(reason) }

        guard partitionCount > 0, partitionCount <= 100_000 else { throw TopicError.invalidPartitions(partitionCount) }
        let config: LogConfig
        do {
            config = try defaults.applying(configOverrides)
        } catch {
            throw TopicError.invalidConfig(error)
        }
        return try topics.withLock { topics in
            if topics[name] != nil { throw TopicError.alreadyExists(name) }
            if TopicName.isInternal(name), !allowInternal {
                throw TopicError.invalidName("\(name) is an internal topic; the broker creates it")
            }
            let description = TopicDescription(
                name: name,
                id: KafkaUUID.random(),
                partitionCount: partitionCount,
                configOverrides: configOverrides
            )
            if validateOnly { return description }
            if !configOverrides.isEmpty {
                try PropertiesFile.write(
                    configOverrides.sorted { $0.key < $1.key },
                    to: Self.configPath(directory, name)
                )
            }
            var partitions: [PartitionLog] = []
            for partition in 0..<Int32(partitionCount) {
                let folder = directory + "/" + Self.folderName(name, partition)
                let log = try PartitionLog(
                    directory: folder,
                    topic: name,
                    partition: partition,
                    config: config,
                    cleanShutdown: true,
                    logger: logger,
                    metrics: metrics,
                    files: self.files
                )
                try Self.writePartitionMetadata(folder, id: description.id)
                partitions.append(log)
            }
            try syncDirectory(directory)
            for log in partitions { log.parentDirectoryIsDurable() }
            topics[name] = Topic(description: description, partitions: partitions)
            logger.info(
                "created topic",
                metadata: ["topic": "\(name)", "partitions": "\(partitionCount)", "id": "\(description.id)"]
            )
            return description
        }
    }

    /// Grows a topic to `count` partitions: the new ones are created empty, with the topic's configs,
    /// and are served at once. Fewer or as many as it has is `invalidPartitions`.
    @discardableResult
    public func addPartitions(name: String, count: Int, validateOnly: Bool = false) throws -> TopicDescription {
        try topics.withLock { topics in
            guard let topic = topics[name] else { throw TopicError.unknownTopic(name) }
            let current = topic.description.partitionCount
            guard count > current, count <= 100_000 else { throw TopicError.invalidPartitions(count) }
            var description = topic.description
            description.partitionCount = count
            if validateOnly { return description }
            let config = (try? defaults.applying(description.configOverrides)) ?? defaults
            var partitions = topic.partitions
            for partition in Int32(current)..<Int32(count) {
                let folder = directory + "/" + Self.folderName(name, partition)
                let log = try PartitionLog(
                    directory: folder,
                    topic: name,
                    partition: partition,
                    config: config,
                    cleanShutdown: true,
                    logger: logger,
                    metrics: metrics,
                    files: self.files
                )
                try Self.writePartitionMetadata(folder, id: description.id)
                partitions.append(log)
            }
            try syncDirectory(directory)
            for log in partitions[current...] { log.parentDirectoryIsDurable() }
            topics[name] = Topic(description: description, partitions: partitions)
            logger.info("added partitions", metadata: ["topic": "\(name)", "from": "\(current)", "to": "\(count)"])
            return description
        }
    }

    /// Replaces a topic's config overrides (those not named go back to their defaults): checked first,
    /// then written durably (a crash leaves the old set or the new one), then in force on every
    /// partition at once. With `validateOnly` only checks. Returns whether the overrides changed.
    @discardableResult
    public func alterTopicConfigs(
        name: String,
        overrides: [String: String],
        validateOnly: Bool = false
    ) throws -> Bool {
        guard topic(named: name) != nil else { throw TopicError.unknownTopic(name) }
        let config: LogConfig
        do {
            config = try defaults.applying(overrides)
        } catch {
            throw TopicError.invalidConfig(error)
        }
        return try topics.withLock { topics in
            guard let topic = topics[name] else { throw TopicError.unknownTopic(name) }
            if validateOnly || overrides == topic.description.configOverrides { return false }
            var description = topic.description
            description.configOverrides = overrides
            let path = Self.configPath(directory, name)
            if overrides.isEmpty {
                unlinkFile(path)
                try syncDirectory(directory + "/" + Self.topicConfigFolder)
            } else {
                try PropertiesFile.write(overrides.sorted { $0.key < $1.key }, to: path)
            }
            for log in topic.partitions { log.updateConfig(config) }
            topics[name] = Topic(description: description, partitions: topic.partitions)
            logger.info("altered topic configs", metadata: ["topic": "\(name)", "overrides": "\(overrides.count)"])
            return true
        }
    }

    /// Deletes a topic: its folders are renamed out of the way at once and removed after. Readers still
    /// holding a segment keep its data readable until they let go.
    @discardableResult
    public func deleteTopic(name: String) throws -> TopicDescription {
        let topic = try topics.withLock { topics in
            guard let topic = topics.removeValue(forKey: name) else { throw TopicError.unknownTopic(name) }
            return topic
        }
        let files = FileManager.default
        for log in topic.partitions {
            log.abandon()
            let doomed = log.directory + "." + String(topic.description.id.high, radix: 16) + Self.deletedSuffix
            if rename(log.directory, doomed) == 0 {
                try? files.removeItem(atPath: doomed)
            } else {
                try? files.removeItem(atPath: log.directory)
            }
        }
        unlinkFile(Self.configPath(directory, name))
        try? syncDirectory(directory)
        logger.info("deleted topic", metadata: ["topic": "\(name)", "id": "\(topic.description.id)"])
        return topic.description
    }

    // MARK: - Maintenance

    /// Runs until cancelled: fsyncs partitions under the `interval` flush policy when their interval is
    /// up, enforces retention every `retentionCheckIntervalMs`, and writes the recovery-point checkpoint
    /// when recovery points have moved.
    public func runMaintenance(retentionCheckIntervalMs: Int64, checkpointIntervalMs: Int64 = 5_000) async {
        var nextRetention = wallClockMillis() + retentionCheckIntervalMs
        var nextCheckpoint = wallClockMillis() + checkpointIntervalMs
        var checkpointed: [TopicPartition: Int64] = [:]
        while !Task.isCancelled {
            let logs = topics.withLock { $0.values.flatMap(\.partitions) }
            let now = wallClockMillis()
            for log in logs {
                let config = log.config
                if config.flushPolicy == .interval, log.hasUnflushedData,
                    now - log.lastFlushTime >= config.flushIntervalMs
                {
                    log.flushInBackground()
                }
            }
            if now >= nextRetention {
                nextRetention = now + retentionCheckIntervalMs
                for log in logs {
                    do {
                        try log.enforceRetention(now: now)
                    } catch {
                        logger.error(
                            "retention failed",
                            metadata: ["partition": "\(log.topic)-\(log.partition)", "error": "\(error)"]
                        )
                    }
                }
            }
            if now >= nextCheckpoint {
                nextCheckpoint = now + checkpointIntervalMs
                let points = Dictionary(
                    uniqueKeysWithValues: logs.map { (TopicPartition($0.topic, $0.partition), $0.recoveryPoint) }
                )
                if points != checkpointed {
                    do {
                        try OffsetCheckpoint.recoveryPoints.write(points, directory: directory)
                        checkpointed = points
                    } catch {
                        logger.error("writing the recovery-point checkpoint failed", metadata: ["error": "\(error)"])
                    }
                }
                do {
                    try checkpointLogStartOffsets()
                } catch {
                    logger.error("writing the log-start checkpoint failed", metadata: ["error": "\(error)"])
                }
            }
            try? await Task.sleep(for: .milliseconds(Self.maintenanceTickMs(logs)))
        }
    }

    /// How often maintenance wakes: often enough for the shortest flush interval, at most every second.
    private static func maintenanceTickMs(_ logs: [PartitionLog]) -> Int64 {
        let shortest =
            logs.lazy.map(\.config).filter { $0.flushPolicy == .interval }.map(\.flushIntervalMs).min() ?? 1000
        return max(10, min(1000, shortest / 2))
    }

    // MARK: - Deleting records

    /// DeleteRecords for one partition: moves its log start to `offset` (-1: the high watermark) and
    /// makes that durable before returning the new log start. See `PartitionLog.deleteRecords`.
    public func deleteRecords(topic: String, partition: Int32, before offset: Int64) throws -> Int64 {
        guard let log = self.partition(topic: topic, partition: partition) else {
            throw TopicError.unknownTopic(topic)
        }
        let start = try log.deleteRecords(before: offset)
        try checkpointLogStartOffsets()
        return start
    }

    /// Writes the log cleaner's checkpoint: each compacted partition's first dirty offset. A cleaning
    /// that is not in it is done again after a restart, which is only work.
    public func checkpointCleanerOffsets() throws {
        try checkpoint(OffsetCheckpoint.cleanerOffsets, writtenLast: writtenCleanerOffsets) {
            $0.filter { $0.config.compacts }.map { (TopicPartition($0.topic, $0.partition), $0.firstDirtyOffset) }
        }
    }

    /// Writes every partition's log start offset, if any moved since the last write.
    func checkpointLogStartOffsets() throws {
        try checkpoint(OffsetCheckpoint.logStartOffsets, writtenLast: writtenLogStartOffsets) {
            $0.map { (TopicPartition($0.topic, $0.partition), $0.logStartOffset) }
        }
    }

    /// Writes `file` with the offsets `points` picks from the partitions, unless they are what was
    /// written last; the lock keeps two writers apart.
    private func checkpoint(
        _ file: OffsetCheckpoint,
        writtenLast: borrowing Mutex<[TopicPartition: Int64]>,
        _ points: ([PartitionLog]) -> [(TopicPartition, Int64)]
    ) throws {
        try writtenLast.withLock { written in
            let current = Dictionary(uniqueKeysWithValues: points(allPartitions))
            guard current != written else { return }
            try file.write(current, directory: directory)
            written = current
        }
    }

    // MARK: - Shutdown

    /// Seals and syncs every partition, then leaves the clean-shutdown marker so the next start skips
    /// recovery. Appends after this fail.
    public func shutdown() throws {
        let all = topics.withLock { $0.values.flatMap(\.partitions) }
        for log in all { try log.close() }
        try OffsetCheckpoint.recoveryPoints.write(
            Dictionary(uniqueKeysWithValues: all.map { (TopicPartition($0.topic, $0.partition), $0.recoveryPoint) }),
            directory: directory
        )
        try writeAtomically([], to: directory + "/" + Self.cleanShutdownMarker)
        logger.info("logs closed cleanly", metadata: ["partitions": "\(all.count)"])
    }

    // MARK: - Layout

    static func folderName(_ topic: String, _ partition: Int32) -> String { "\(topic)-\(partition)" }

    static func configPath(_ directory: String, _ topic: String) -> String {
        directory + "/" + topicConfigFolder + "/" + topic + ".properties"
    }

    /// "orders-3" → ("orders", 3). Topic names may themselves contain '-'.
    static func parsePartitionFolder(_ name: String) -> (String, Int32)? {
        guard let dash = name.lastIndex(of: "-") else { return nil }
        let topic = String(name[..<dash])
        guard let partition = Int32(name[name.index(after: dash)...]), partition >= 0,
            TopicName.invalidityReason(topic) == nil
        else { return nil }
        return (topic, partition)
    }

    /// `partition.metadata`, in Kafka's format: the topic id, so a topic recreated under the same name is
    /// recognisably a different topic.
    static func writePartitionMetadata(_ folder: String, id: KafkaUUID) throws {
        let path = folder + "/partition.metadata"
        if let existing = try PropertiesFile.read(path), existing["topic_id"] == id.description { return }
        try PropertiesFile.write([("version", "0"), ("topic_id", id.description)], to: path, separator: ": ")
    }
}
