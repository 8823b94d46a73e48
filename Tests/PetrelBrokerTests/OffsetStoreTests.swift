import Foundation
import Logging
import NIOCore
import PetrelProtocol
import PetrelStorage
import PetrelTestSupport
import Testing

@testable import PetrelBroker

@Suite("Committed offsets in __consumer_offsets")
struct OffsetStoreTests {
    let logger = Logger(label: "test")

    func open(_ folder: TemporaryDirectory, partitions: Int = 16) throws -> (LogManager, OffsetStore) {
        let logs = try LogManager(
            directory: folder.path,
            defaults: LogConfig(),
            logger: logger,
            files: FileCache(capacity: 64)
        )
        return (logs, try OffsetStore(logs: logs, partitionCount: partitions, logger: logger))
    }

    @Test("commits replay after a restart, later commits and deletions winning; no metadata is Kafka's empty string")
    func replay() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        do {
            let (logs, store) = try open(folder)
            try await store.commit(
                group: "a",
                [TopicPartition("t", 0): CommittedOffset(offset: 1, metadata: "x", commitTimestamp: 5)]
            )
            try await store.commit(group: "a", [TopicPartition("t", 0): CommittedOffset(offset: 2, commitTimestamp: 6)])
            try await store.commit(group: "b", [TopicPartition("t", 1): CommittedOffset(offset: 9, commitTimestamp: 7)])
            try await store.commit(group: "c", [TopicPartition("u", 0): CommittedOffset(offset: 4, commitTimestamp: 7)])
            try await store.deleteGroup("b")
            try await store.deleteTopic("u")
            #expect(store.committed(group: "a")[TopicPartition("t", 0)]?.metadata == "")
            try logs.shutdown()
        }
        let (_, reopened) = try open(folder, partitions: 3)
        #expect(
            reopened.committed(group: "a") == [
                TopicPartition("t", 0): CommittedOffset(offset: 2, metadata: "", commitTimestamp: 6)
            ]
        )
        #expect(reopened.committed(group: "b").isEmpty)
        #expect(reopened.committed(group: "c").isEmpty)
        #expect(reopened.groups == ["a"])
        // The topic keeps the partition count it was created with.
        #expect(reopened.partition(ofGroup: "a") == OffsetsTopicRecord.partition(ofGroup: "a", partitionCount: 16))
    }

    @Test(
        "records are Kafka's: OffsetCommitKey v1 and OffsetCommitValue v3 in the group's partition, tombstones for deletions"
    )
    func kafkaLayout() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let (logs, store) = try open(folder)
        try await store.commit(
            group: "billing",
            [
                TopicPartition("orders", 2): CommittedOffset(
                    offset: 42,
                    leaderEpoch: 0,
                    metadata: "m",
                    commitTimestamp: 1000
                )
            ]
        )
        try await store.deleteOffsets(group: "billing", [TopicPartition("orders", 2)])
        let index = OffsetsTopicRecord.partition(ofGroup: "billing", partitionCount: 16)
        let log = try #require(logs.partition(topic: "__consumer_offsets", partition: index))
        let bytes = try #require(try log.read(from: 0, maxBytes: 1 << 20).slice).readBytes()
        let records = try RecordBatchDecoder.decodeBatches(bytes).flatMap(\.records)
        #expect(records.count == 2)
        let key: [UInt8] =
            [0, 1] + [0, 7] + Array("billing".utf8) + [0, 6] + Array("orders".utf8) + [0, 0, 0, 2]
        let value: [UInt8] =
            [0, 3] + [0, 0, 0, 0, 0, 0, 0, 42] + [0, 0, 0, 0] + [0, 1] + Array("m".utf8)
            + [0, 0, 0, 0, 0, 0, 0x03, 0xE8]
        #expect(records.map { $0.key.map { Array(buffer: $0) } } == [key, key])
        #expect(records[0].value.map { Array(buffer: $0) } == value)
        #expect(records[1].value == nil)
        // No other partition holds anything.
        for other in 0..<Int32(16) where other != index {
            #expect(logs.partition(topic: "__consumer_offsets", partition: other)?.logEndOffset == 0)
        }
    }

    @Test("a group's partition is the absolute value of Java's String.hashCode modulo the count, as in Kafka")
    func javaHashCode() {
        #expect(OffsetsTopicRecord.partition(ofGroup: "", partitionCount: 50) == 0)
        // "hello".hashCode() == 99162322 in Java.
        #expect(OffsetsTopicRecord.partition(ofGroup: "hello", partitionCount: 50) == 99_162_322 % 50)
        // Negative hashes: "my-group" is -1906497762 (Kafka puts it in partition 12 of 50), "billing"
        // -109829509.
        #expect(OffsetsTopicRecord.partition(ofGroup: "my-group", partitionCount: 50) == 12)
        #expect(OffsetsTopicRecord.partition(ofGroup: "billing", partitionCount: 16) == 5)
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE, which Kafka's Utils.abs maps to 0.
        #expect(OffsetsTopicRecord.partition(ofGroup: "polygenelubricants", partitionCount: 50) == 0)
        // Java hashes UTF-16 code units: "é" is 0xE9, one unit.
        #expect(OffsetsTopicRecord.partition(ofGroup: "é", partitionCount: 1_000) == 0xE9)
    }

    @Test("the log cleaner compacts the topic like any compacted topic, and it replays to the same offsets")
    func compaction() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let expected: [TopicPartition: CommittedOffset]
        do {
            let (logs, store) = try open(folder, partitions: 1)
            // Small segments, so that all but the active one can be cleaned.
            try logs.alterTopicConfigs(
                name: "__consumer_offsets",
                overrides: ["cleanup.policy": "compact", "segment.bytes": "4096"]
            )
            for round in 0..<400 {
                try await store.commit(
                    group: "busy",
                    [TopicPartition("t", Int32(round % 3)): CommittedOffset(offset: Int64(round), commitTimestamp: 1)]
                )
            }
            let log = try #require(logs.partition(topic: "__consumer_offsets", partition: 0))
            let before = log.sizeInBytes
            let cleaner = LogCleaner(logs: logs, configuration: LogCleanerConfiguration(), logger: logger)
            #expect(try cleaner.cleanNow(TopicPartition("__consumer_offsets", 0)) != nil)
            #expect(log.sizeInBytes < before / 4)
            expected = store.committed(group: "busy")
            #expect(expected.count == 3)
            try logs.shutdown()
        }
        let (_, reopened) = try open(folder)
        #expect(reopened.committed(group: "busy") == expected)
        #expect(reopened.committed(group: "busy")[TopicPartition("t", 0)]?.offset == 399)
    }

    @Test("a data directory written by the old format is moved into the topic once, every offset kept")
    func migration() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let fixture = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
            .appendingPathComponent("legacy-offsets-data").path
        for name in try FileManager.default.contentsOfDirectory(atPath: fixture) {
            try FileManager.default.copyItem(atPath: fixture + "/" + name, toPath: folder.path + "/" + name)
        }
        let expected: [String: [TopicPartition: Int64]] = [
            "billing": [
                TopicPartition("orders", 0): 5, TopicPartition("orders", 1): 4, TopicPartition("orders", 2): 10,
            ],
            "audit": [TopicPartition("orders", 0): 10, TopicPartition("refunds", 0): 2],
        ]
        for _ in 0..<2 {
            let (logs, store) = try open(folder)
            #expect(store.allCommitted.mapValues { $0.mapValues(\.offset) } == expected)
            // librdkafka sends the metadata with its C string's terminator.
            #expect(store.committed(group: "billing")[TopicPartition("orders", 0)]?.metadata == "worker-1\u{0}")
            #expect(!FileManager.default.fileExists(atPath: folder.path + "/__consumer_offsets"))
            let records = logs.partitions(topic: "__consumer_offsets")!.reduce(0) { $0 + Int($1.logEndOffset) }
            #expect(records == 5)  // moved once: the second start finds nothing left to move
            try logs.shutdown()
        }
    }
}
