import Foundation
import NIOCore
import PetrelProtocol
import PetrelStorage
import PetrelTestSupport
import Testing

@Suite("Partition log")
struct PartitionLogTests {
    @Test("appends get consecutive offsets and read back whole")
    func appendAndRead() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let log = try openLog(folder.path)
        #expect(try log.appendRecords(3) == 0)
        #expect(try log.appendRecords(5) == 3)
        #expect(try log.appendRecords(1) == 8)
        #expect(log.logEndOffset == 9)
        #expect(log.logStartOffset == 0)
        let records = try log.readAll()
        #expect(records.map(\.offset) == Array(0..<9))
        #expect(String(buffer: records[3].value!).hasPrefix("r0-"))
        #expect(
            files(in: folder.path) == [
                "00000000000000000000.index", "00000000000000000000.log", "00000000000000000000.timeindex",
            ]
        )
    }

    @Test("records survive reopening, after a clean close and after none", arguments: [true, false])
    func survivesRestart(clean: Bool) throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        do {
            let log = try openLog(folder.path)
            for _ in 0..<50 { try log.appendRecords(4) }
            if clean { try log.close() }
        }
        let reopened = try openLog(folder.path, clean: clean)
        #expect(reopened.logEndOffset == 200)
        #expect(try reopened.readAll().map(\.offset) == Array(0..<200))
        #expect(try reopened.appendRecords(1) == 200)
    }

    @Test("a read past the end or below the start is out of range; at the end it is empty")
    func outOfRange() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let log = try openLog(folder.path)
        try log.appendRecords(2)
        #expect(try log.read(from: 2, maxBytes: 100).slice == nil)
        #expect(throws: PartitionLog.ReadError.offsetOutOfRange(logStartOffset: 0, logEndOffset: 2)) {
            try log.read(from: 3, maxBytes: 100)
        }
        #expect(throws: PartitionLog.ReadError.offsetOutOfRange(logStartOffset: 0, logEndOffset: 2)) {
            try log.read(from: -1, maxBytes: 100)
        }
    }

    @Test("a read returns the batch containing the offset, and at least one batch even over the limit")
    func readLimits() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let log = try openLog(folder.path)
        try log.appendRecords(10, valueSize: 200)  // offsets 0-9, one big batch
        try log.appendRecords(10, valueSize: 200)  // 10-19
        let middle = try #require(try log.read(from: 15, maxBytes: 1).slice)
        #expect(middle.firstOffset == 10)
        let whole = try RecordBatchDecoder.decodeBatches(try middle.readBytes())
        #expect(whole.count == 1 && whole[0].header.baseOffset == 10)
        #expect(try log.read(from: 0, maxBytes: 1, minOneBatch: false).slice == nil)
        let both = try #require(try log.read(from: 0, maxBytes: 1 << 20).slice)
        #expect(try RecordBatchDecoder.decodeBatches(try both.readBytes()).count == 2)
    }
}
