import Foundation
import PetrelProtocol
import PetrelStorage
import PetrelTestSupport
import Testing

@Suite("Retention")
struct RetentionTests {
    private func log(
        _ folder: TemporaryDirectory,
        retentionMs: Int64 = -1,
        retentionBytes: Int64 = -1
    ) throws -> PartitionLog {
        var config = LogConfig()
        config.segmentBytes = 300
        config.retentionMs = retentionMs
        config.retentionBytes = retentionBytes
        return try openLog(folder.path, config: config)
    }

    @Test("segments whose newest record is older than retention.ms are deleted, oldest first")
    func byTime() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let log = try log(folder, retentionMs: 10_000)
        for batch in 0..<12 { try log.appendRecords(2, timestamp: Int64(batch) * 1_000) }
        let bases = log.segmentBaseOffsets
        #expect(bases.count >= 4)
        // At t = 13,500 every record stamped before 3,500 has expired: segments ending at or before that go.
        let result = try log.enforceRetention(now: 13_500)
        #expect(result.deletedSegments >= 1)
        #expect(log.logStartOffset == log.segmentBaseOffsets[0])
        #expect(log.logStartOffset > 0)
        #expect(log.logEndOffset == 24)
        // Nothing deleted holds a record younger than the limit.
        #expect(try log.readAll(from: log.logStartOffset).first.map { $0.timestamp >= 0 } == true)
        #expect(throws: PartitionLog.ReadError.offsetOutOfRange(logStartOffset: log.logStartOffset, logEndOffset: 24)) {
            try log.read(from: 0, maxBytes: 1000)
        }
        for base in bases where base < log.logStartOffset {
            #expect(!FileManager.default.fileExists(atPath: folder.path + "/" + String(format: "%020lld.log", base)))
        }
    }

    @Test("when everything has expired the active segment is rolled and deleted too; offsets carry on")
    func everythingExpired() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let log = try log(folder, retentionMs: 1_000)
        for _ in 0..<3 { try log.appendRecords(2, timestamp: 5_000) }
        try log.enforceRetention(now: 100_000)
        #expect(log.logStartOffset == 6)
        #expect(log.logEndOffset == 6)
        #expect(log.segmentCount == 1)
        #expect(try log.appendRecords(1, timestamp: 100_000) == 6)
        try log.enforceRetention(now: 100_500)
        #expect(log.logStartOffset == 6)
    }

    @Test("the oldest segments go while the partition is over retention.bytes; the active one stays")
    func bySize() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let log = try log(folder, retentionBytes: 1_200)
        for _ in 0..<20 { try log.appendRecords(2) }
        #expect(log.sizeInBytes > 1_200)
        try log.enforceRetention(now: 0)
        #expect(log.sizeInBytes <= 1_200 + 300)
        #expect(log.logStartOffset > 0)
        #expect(try log.readAll(from: log.logStartOffset).map(\.offset) == Array(log.logStartOffset..<40))
    }

    @Test("unlimited retention deletes nothing")
    func unlimited() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let log = try log(folder)
        for _ in 0..<10 { try log.appendRecords(2, timestamp: 0) }
        #expect(try log.enforceRetention(now: .max / 2).deletedSegments == 0)
        #expect(log.logStartOffset == 0)
    }

    @Test("a reader holding a slice of a deleted segment can still read it")
    func readerOutlivesDeletion() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let log = try log(folder, retentionMs: 1)
        for _ in 0..<6 { try log.appendRecords(2, timestamp: 0) }
        let slice = try #require(try log.read(from: 0, maxBytes: 10_000).slice)
        try log.enforceRetention(now: 1_000_000)
        #expect(log.logStartOffset == 12)
        let batches = try RecordBatchDecoder.decodeBatches(try slice.readBytes())
        #expect(batches.first?.header.baseOffset == 0)
    }
}
