import Foundation
import PetrelProtocol
import PetrelTestSupport
import Testing

@testable import PetrelStorage

/// Bounded open files: the CLOCK cache on its own, then partitions sharing a small `FileCache`.
@Suite("File cache")
struct FileCacheTests {
    private func openLog(
        _ folder: TemporaryDirectory,
        partition: Int,
        config: LogConfig,
        cache: FileCache,
        clean: Bool
    ) throws -> PartitionLog {
        try PartitionLog(
            directory: folder.path + "/t-\(partition)",
            topic: "t",
            partition: Int32(partition),
            config: config,
            cleanShutdown: clean,
            logger: testLogger,
            files: cache
        )
    }

    @Test("the cache never holds more than its capacity; a value used again outlives one used once")
    func clockEviction() {
        var cache = ClockCache<Int, String>(capacity: 3)
        for key in 1...3 { #expect(cache.insert("v\(key)", for: key) == nil) }
        #expect(cache.value(for: 1) == "v1")  // 1 gets its second chance
        let evicted = cache.insert("v4", for: 4)
        #expect(evicted?.key == 2 && cache.count == 3)
        #expect(cache.value(for: 1) == "v1" && cache.value(for: 2) == nil)
        #expect(cache.remove(3) == "v3" && cache.count == 2)
        #expect(cache.insert("v5", for: 5) == nil, "a removed entry's slot is reused without evicting")
        for key in 6...50 { _ = cache.insert("v\(key)", for: key) }
        #expect(cache.count == 3 && cache.value(for: 50) == "v50")
    }

    @Test("a hundred partitions written and read through eight open files; the count never goes past eight")
    func manyPartitionsFewFiles() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let cache = FileCache(capacity: 8)
        var config = LogConfig()
        config.segmentBytes = 400  // several segments per partition
        let logs = try (0..<100).map { partition in
            try openLog(folder, partition: partition, config: config, cache: cache, clean: false)
        }
        for round in 0..<3 {
            for log in logs {
                try log.appendRecords(5, timestamp: Int64(round))
                #expect(cache.count <= 8)
            }
        }
        for log in logs {
            #expect(log.segmentBaseOffsets.count > 1)
            #expect(try log.readAll().map(\.offset) == Array(0..<15))
        }
        #expect(cache.count <= 8)
        // Closed cleanly and opened again through the same small cache: everything is still there.
        for log in logs { try log.close() }
        let reopened = try openLog(folder, partition: 7, config: config, cache: cache, clean: true)
        #expect(try reopened.readAll().count == 15)
    }

    @Test("a read in flight keeps its file open after the cache evicted it and retention deleted it")
    func readerOutlivesEvictionAndDeletion() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let cache = FileCache(capacity: 3)
        var config = LogConfig()
        config.segmentBytes = 300
        config.retentionMs = 1
        let log = try openLog(folder, partition: 0, config: config, cache: cache, clean: false)
        for batch in 0..<6 { try log.appendRecords(2, timestamp: Int64(batch)) }
        let slice = try #require(try log.read(from: 0, maxBytes: 1 << 20).slice)
        // Other files push the first segment's out of the cache, then retention deletes it.
        let other = try openLog(folder, partition: 1, config: config, cache: cache, clean: false)
        for batch in 0..<6 { try other.appendRecords(2, timestamp: Int64(batch)) }
        #expect(try log.enforceRetention(now: 1_000_000).deletedSegments >= 1)
        #expect(!files(in: folder.path + "/t-0").contains(LogSegment.fileName(baseOffset: 0, suffix: ".log")))
        let batches = try RecordBatchDecoder.decodeBatches(try slice.readBytes())
        #expect(batches.first?.header.baseOffset == 0 && batches.first?.records.count == 2)
    }
}
