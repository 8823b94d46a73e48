import Foundation
import PetrelProtocol
import PetrelTestSupport
import Testing

@testable import PetrelStorage

@Suite("Flushing and recovery points")
struct FlushTests {
    @Test("waiting for durability returns once an fsync covers the offset, and moves the recovery point")
    func waitForDurability() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let log = try openLog(folder.path)
        #expect(log.recoveryPoint == 0)
        try log.appendRecords(5)
        #expect(log.hasUnflushedData)
        try await log.waitUntilDurable(through: 4)
        #expect(log.recoveryPoint == 5)
        #expect(!log.hasUnflushedData)
        #expect(log.completedFlushes == 1)
        // Already durable: no new fsync.
        try await log.waitUntilDurable(through: 2)
        #expect(log.completedFlushes == 1)
    }

    @Test("appends waiting together share fsyncs (group commit)")
    func groupCommit() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let log = try openLog(folder.path)
        var lastOffsets: [Int64] = []
        for _ in 0..<50 {
            let base = try log.appendRecords(2)
            lastOffsets.append(base + 1)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for offset in lastOffsets { group.addTask { try await log.waitUntilDurable(through: offset) } }
            try await group.waitForAll()
        }
        // The first fsync covers all fifty appends; a waiter that arrived mid-fsync may cause one more.
        #expect(log.completedFlushes <= 2)
        #expect(log.recoveryPoint == 100)
    }

    @Test("a rolled segment is fsynced in the background, moving the recovery point past it")
    func rollFlushes() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        var config = LogConfig()
        config.segmentBytes = 500
        let log = try openLog(folder.path, config: config)
        for _ in 0..<10 { try log.appendRecords(2) }
        #expect(log.segmentCount > 2)
        let secondToLast = log.segmentBaseOffsets.dropLast().last!
        for _ in 0..<200 where log.recoveryPoint < secondToLast { try await Task.sleep(for: .milliseconds(10)) }
        #expect(log.recoveryPoint >= secondToLast)
    }

    @Test("after an unclean stop, damage in a segment above the recovery point truncates it and drops the rest")
    func damageAboveRecoveryPoint() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        var config = LogConfig()
        config.segmentBytes = 300
        let bases: [Int64]
        do {
            let log = try openLog(folder.path, config: config)
            for _ in 0..<12 { try log.appendRecords(2) }
            bases = log.segmentBaseOffsets
        }
        #expect(bases.count >= 4)
        // Corrupt the first batch of the second segment.
        let second = folder.path + "/" + String(format: "%020lld.log", bases[1])
        let handle = try #require(FileHandle(forUpdatingAtPath: second))
        try handle.seek(toOffset: 40)
        try handle.write(contentsOf: Data([0xEE, 0xEE]))
        try handle.close()

        let recovered = try openLog(folder.path, config: config, clean: false)
        #expect(recovered.logEndOffset == bases[1])
        #expect(recovered.segmentBaseOffsets == Array(bases[0...1]))
        #expect(try recovered.readAll().map(\.offset) == Array(0..<bases[1]))
        #expect(try recovered.appendRecords(1) == bases[1])
    }

    @Test("segments wholly below the recovery point are trusted without a scan")
    func trustedBelowRecoveryPoint() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        var config = LogConfig()
        config.segmentBytes = 300
        let bases: [Int64]
        do {
            let log = try openLog(folder.path, config: config)
            for _ in 0..<12 { try log.appendRecords(2) }
            bases = log.segmentBaseOffsets
        }
        // A flipped byte in the first segment, which the recovery point says was durable: not scanned.
        let first = folder.path + "/" + String(format: "%020lld.log", bases[0])
        let handle = try #require(FileHandle(forUpdatingAtPath: first))
        try handle.seek(toOffset: 70)
        try handle.write(contentsOf: Data([0xEE]))
        try handle.close()
        let trusting = try PartitionLog(
            directory: folder.path,
            topic: "t",
            partition: 0,
            config: config,
            cleanShutdown: false,
            recoveryPoint: bases[2],
            logger: testLogger
        )
        #expect(trusting.logEndOffset == 24)
        #expect(trusting.recoveryPoint == bases[2])
    }
}
