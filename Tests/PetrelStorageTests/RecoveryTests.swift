import Foundation
import NIOCore
import PetrelProtocol
import PetrelStorage
import PetrelTestSupport
import Testing

/// Damage done to the active segment between a crash and the restart.
@Suite("Recovery after an unclean shutdown")
struct RecoveryTests {
    private let logName = "00000000000000000000.log"

    /// Writes 20 batches of 3 records (offsets 0-59) and returns the byte position where each batch starts.
    private func prepare(_ folder: TemporaryDirectory) throws -> [Int] {
        let log = try openLog(folder.path)
        var positions: [Int] = []
        var position = 0
        for _ in 0..<20 {
            let (batch, header) = try makeBatch(count: 3)
            positions.append(position)
            position += batch.readableBytes
            _ = try log.append(batch, header: header, now: 0)
        }
        return positions
    }

    private func fileSize(_ path: String) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
    }

    @Test("a tail torn mid-batch is cut off at the last whole batch")
    func tornTail() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let positions = try prepare(folder)
        let path = folder.path + "/" + logName
        truncate(path, off_t(positions[19] + 30))
        let log = try openLog(folder.path)
        #expect(log.logEndOffset == 57)
        #expect(try fileSize(path) == positions[19])
        #expect(try log.readAll().map(\.offset) == Array(0..<57))
        #expect(try log.appendRecords(1) == 57)
    }

    @Test("a flipped byte under the CRC truncates at that batch")
    func flippedByte() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let positions = try prepare(folder)
        let path = folder.path + "/" + logName
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: UInt64(positions[12] + 70))
        let byte = try #require(try handle.read(upToCount: 1))
        try handle.seek(toOffset: UInt64(positions[12] + 70))
        try handle.write(contentsOf: Data([byte[0] ^ 0x01]))
        try handle.close()
        let log = try openLog(folder.path)
        #expect(log.logEndOffset == 36)
        #expect(try log.readAll().map(\.offset) == Array(0..<36))
    }

    @Test("a zero-filled tail (preallocated or unflushed pages) is cut off")
    func zeroFilledTail() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let positions = try prepare(folder)
        let path = folder.path + "/" + logName
        let end = try fileSize(path)
        truncate(path, off_t(end + 8192))
        let log = try openLog(folder.path)
        #expect(log.logEndOffset == 60)
        #expect(try fileSize(path) == end)
        #expect(positions.count == 20)
    }

    @Test("a missing index is rebuilt; a clean shutdown with a damaged index falls back to recovery")
    func missingIndex() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        var config = LogConfig()
        config.indexIntervalBytes = 100
        do {
            let log = try openLog(folder.path, config: config)
            for _ in 0..<20 { try log.appendRecords(3) }
            try log.close()
        }
        let index = folder.path + "/00000000000000000000.index"
        let indexSize = try fileSize(index)
        #expect(indexSize > 8)
        try FileManager.default.removeItem(atPath: index)
        let rebuilt = try openLog(folder.path, config: config, clean: false)
        #expect(rebuilt.logEndOffset == 60)
        #expect(try fileSize(index) == indexSize)
        try rebuilt.close()

        // Garbage index entries pointing past the log: even a "clean" open must not trust them.
        try Data(repeating: 0xFF, count: 16).write(to: URL(fileURLWithPath: index))
        let reopened = try openLog(folder.path, config: config, clean: true)
        #expect(reopened.logEndOffset == 60)
        #expect(try reopened.readAll().map(\.offset) == Array(0..<60))
        #expect(try fileSize(index) == indexSize)
    }

    @Test("what a power failure can leave: a rolled segment and its indexes empty, an empty producer snapshot")
    func powerFailureLeftovers() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        var config = LogConfig()
        config.segmentBytes = 600
        let log = try openLog(folder.path, config: config)
        for _ in 0..<12 { try log.appendRecords(3) }
        let bases = log.segmentBaseOffsets
        #expect(bases.count >= 3)
        // The newest segment's names were made durable, its data never was; its snapshot likewise.
        let newest = bases[bases.count - 1]
        for suffix in [".log", ".index", ".timeindex", ".snapshot"] {
            let digits = String(newest)
            let path = folder.path + "/" + String(repeating: "0", count: 20 - digits.count) + digits + suffix
            if FileManager.default.fileExists(atPath: path) { truncate(path, 0) }
        }
        let recovered = try openLog(folder.path, config: config)
        #expect(recovered.logEndOffset == newest)
        #expect(try recovered.readAll().map(\.offset) == Array(0..<newest))
        #expect(try recovered.appendRecords(1) == newest)
    }

    @Test("a log that is garbage from the first byte recovers to empty")
    func garbageLog() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        try Data((0..<500).map { UInt8($0 % 251) }).write(to: URL(fileURLWithPath: folder.path + "/" + logName))
        let log = try openLog(folder.path)
        #expect(log.logEndOffset == 0)
        #expect(try log.appendRecords(2) == 0)
    }
}
