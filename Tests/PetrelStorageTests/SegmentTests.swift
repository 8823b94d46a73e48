import Foundation
import NIOCore
import PetrelProtocol
import PetrelStorage
import PetrelTestSupport
import Testing

@Suite("Segments and indexes")
struct SegmentTests {
    @Test("segments roll on size, named by their base offset")
    func rollOnSize() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        var config = LogConfig()
        config.segmentBytes = 1024
        let log = try openLog(folder.path, config: config)
        for _ in 0..<40 { try log.appendRecords(3, valueSize: 40) }  // ~220-byte batches
        #expect(log.segmentCount > 5)
        let bases = log.segmentBaseOffsets
        #expect(bases.first == 0)
        #expect(bases == bases.sorted())
        for base in bases {
            let name = String(format: "%020lld.log", base)
            #expect(files(in: folder.path).contains(name))
            let size = try #require(
                try FileManager.default.attributesOfItem(atPath: folder.path + "/" + name)[.size] as? Int
            )
            #expect(size <= 1024)
        }
        #expect(try log.readAll().map(\.offset) == Array(0..<120))
    }

    @Test("segments roll on age")
    func rollOnAge() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        var config = LogConfig()
        config.segmentMs = 1000
        let log = try openLog(folder.path, config: config)
        try log.appendRecords(1, now: 10_000)
        try log.appendRecords(1, now: 10_500)
        #expect(log.segmentCount == 1)
        try log.appendRecords(1, now: 11_000)
        #expect(log.segmentCount == 2)
        #expect(log.segmentBaseOffsets == [0, 2])
    }

    @Test("every offset is found, at index entries, between them, at segment edges and at the end")
    func lookupAtEveryBoundary() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        var config = LogConfig()
        config.segmentBytes = 4000
        config.indexIntervalBytes = 300  // an index entry every few batches
        let log = try openLog(folder.path, config: config)
        var sizes = [1, 7, 2, 13, 1, 1, 5]
        var expected: [Int64] = []
        for round in 0..<30 {
            let count = sizes[round % sizes.count]
            let base = try log.appendRecords(count, valueSize: 10 + round % 4 * 30)
            expected += (base..<base + Int64(count))
        }
        sizes.removeAll()
        #expect(log.segmentCount >= 3)
        for reopenedClean in [nil, true, false] as [Bool?] {
            let target =
                try reopenedClean.map { clean -> PartitionLog in
                    if clean { try log.close() }
                    return try openLog(folder.path, config: config, clean: clean)
                } ?? log
            for offset in expected {
                let slice = try #require(try target.read(from: offset, maxBytes: 1).slice, "offset \(offset)")
                let batch = try #require(try RecordBatchDecoder.decodeBatches(try slice.readBytes()).first)
                #expect(batch.header.baseOffset <= offset && offset <= batch.header.lastOffset, "offset \(offset)")
                // A bigger read: the slice knows where its last batch ends.
                for maxBytes in [700, 1_500, 1 << 20] {
                    let wide = try #require(try target.read(from: offset, maxBytes: maxBytes).slice)
                    let batches = try RecordBatchDecoder.decodeBatches(try wide.readBytes())
                    #expect(wide.nextOffset == batches.last?.header.nextOffset, "offset \(offset), \(maxBytes) bytes")
                }
            }
        }
    }

    @Test("the first record at or after a timestamp, exactly, across segments")
    func timestampLookup() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        var config = LogConfig()
        config.segmentBytes = 2000
        config.indexIntervalBytes = 200
        let log = try openLog(folder.path, config: config)
        // Batch i holds 5 records stamped 1000*i + 0...4.
        for batch in 0..<30 { try log.appendRecords(5, timestamp: Int64(batch) * 1000) }
        #expect(log.segmentCount > 1)
        #expect(try log.firstOffset(atOrAfter: 0) == .init(offset: 0, timestamp: 0))
        #expect(try log.firstOffset(atOrAfter: 7002) == .init(offset: 37, timestamp: 7002))
        #expect(try log.firstOffset(atOrAfter: 7005) == .init(offset: 40, timestamp: 8000))
        #expect(try log.firstOffset(atOrAfter: 29_004) == .init(offset: 149, timestamp: 29_004))
        #expect(try log.firstOffset(atOrAfter: 29_005) == nil)
        #expect(try log.offsetOfMaxTimestamp() == .init(offset: 149, timestamp: 29_004))
    }

    @Test("the record with the largest timestamp, even when later records are older")
    func maxTimestamp() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let log = try openLog(folder.path)
        try log.appendRecords(3, timestamp: 100)
        try log.appendRecords(3, timestamp: 900)  // 3,4,5 stamped 900..902
        try log.appendRecords(3, timestamp: 200)
        #expect(try log.offsetOfMaxTimestamp() == .init(offset: 5, timestamp: 902))
        try log.close()
        let reopened = try openLog(folder.path, clean: true)
        #expect(try reopened.offsetOfMaxTimestamp() == .init(offset: 5, timestamp: 902))
        #expect(try reopened.firstOffset(atOrAfter: 150) == .init(offset: 3, timestamp: 900))
    }
}
