import Logging
import NIOCore
import PetrelProtocol
import PetrelStorage

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The committed-offsets log of earlier versions: one partition log in `<data>/__consumer_offsets`
/// (no partition suffix, so the log manager never took it for a topic), in a layout of its own:
///
///     key:   int16 version = 1, string group, string topic, int32 partition
///     value: int16 version = 1, int64 offset, int32 leader epoch, nullable string metadata,
///            int64 commit timestamp            (null value: the offset was deleted)
///
/// (the key is Kafka's; the value is not: Kafka's version 1 has no leader epoch). At start its live
/// offsets move into the `__consumer_offsets` topic, once; the folder is removed only after they are
/// durable there, so a crash during the move repeats it on the next start.
enum LegacyOffsetLog {
    static let folderName = "__consumer_offsets"

    /// The live offsets of a legacy log under `dataDirectory`, or nil if there is none. Resolves a
    /// compaction the old store left half done (its `.compacting` folder, complete, not yet renamed).
    static func read(
        dataDirectory: String,
        config: LogConfig,
        logger: Logger,
        files: FileCache
    ) throws -> [String: [TopicPartition: CommittedOffset]]? {
        let manager = FileManager.default
        let folder = dataDirectory + "/" + folderName
        if !manager.fileExists(atPath: folder), manager.fileExists(atPath: folder + ".compacting") {
            try manager.moveItem(atPath: folder + ".compacting", toPath: folder)
            try syncDirectory(dataDirectory)
        }
        // Leftovers: an abandoned compaction, and a finished migration's folder not yet removed.
        for suffix in [".compacting", ".old", ".migrated"] { try? manager.removeItem(atPath: folder + suffix) }
        guard manager.fileExists(atPath: folder) else { return nil }
        let log = try PartitionLog(
            directory: folder,
            topic: folderName,
            partition: 0,
            config: config,
            cleanShutdown: false,
            logger: logger,
            files: files
        )
        defer { try? log.close() }
        var offsets: [String: [TopicPartition: CommittedOffset]] = [:]
        try log.forEachRecord { _, record in
            guard var key = record.key, let (group, partition) = try? decodeKey(&key) else { return }
            let committed = record.value.flatMap { value in
                var value = value
                return try? decodeValue(&value)
            }
            offsets.set(group, partition, committed)
        }
        return offsets
    }

    /// Removes the legacy folder once its offsets are durable elsewhere; the rename is fsynced first,
    /// so a power failure cannot bring the old log back after newer commits.
    static func remove(dataDirectory: String) throws {
        let folder = dataDirectory + "/" + folderName
        let doomed = folder + ".migrated"
        try FileManager.default.moveItem(atPath: folder, toPath: doomed)
        try syncDirectory(dataDirectory)
        try FileManager.default.removeItem(atPath: doomed)
    }

    private static func decodeKey(_ key: inout ByteBuffer) throws -> (String, TopicPartition) {
        guard try key.readKafkaInteger(as: Int16.self) == 1 else {
            throw ProtocolError(.invalidValue, "offset key version")
        }
        let group = try key.readKafkaString(flexible: false)
        let topic = try key.readKafkaString(flexible: false)
        return (group, TopicPartition(topic, try key.readKafkaInteger()))
    }

    private static func decodeValue(_ value: inout ByteBuffer) throws -> CommittedOffset {
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
