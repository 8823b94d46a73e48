import Foundation
import NIOCore
import PetrelProtocol
import PetrelTestSupport
import Synchronization
import Testing

@testable import PetrelStorage

@Suite("Log cleaning")
struct LogCleaningTests {
    static let now: Int64 = 1_700_000_100_000

    /// 20 keys updated 5 times each in batches of 4, with k3 and k7 deleted at the end.
    private func fill(_ log: PartitionLog, compression: CompressionCodec = .none) throws -> [String: String] {
        var latest: [String: String] = [:]
        var pending: [Update] = []
        for round in 0..<5 {
            for key in 0..<20 {
                let value = "v\(round)-k\(key)"
                pending.append(Update(key: "k\(key)", value: value))
                latest["k\(key)"] = value
                if pending.count == 4 {
                    try log.appendUpdates(pending, compression: compression)
                    pending = []
                }
            }
        }
        let tombstones = try log.appendUpdates(
            [Update(key: "k3", value: nil), Update(key: "k7", value: nil)],
            compression: compression
        )
        latest["k3"] = nil
        latest["k7"] = nil
        // Updates of one more key until the tombstones' segment is no longer the active one.
        var filler = 0
        while log.segmentBaseOffsets.last! <= tombstones {
            try log.appendUpdates([Update(key: "z", value: "z\(filler)")], compression: compression)
            latest["z"] = "z\(filler)"
            filler += 1
        }
        return latest
    }

    @Test(
        "a cleaned log keeps each key's latest record, offsets and the log end unchanged",
        arguments: [CompressionCodec.none, .gzip]
    )
    func keepsLatest(compression: CompressionCodec) throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let log = try openLog(folder.path, config: compactedConfig())
        let latest = try fill(log, compression: compression)
        let end = log.logEndOffset
        let sizeBefore = log.sizeInBytes
        let result = try #require(try log.clean(memoryBytes: 1 << 20, now: Self.now))
        #expect(result.passes == 1)
        #expect(result.recordsRemoved > 0)
        #expect(log.logEndOffset == end)
        #expect(log.sizeInBytes < sizeBefore)
        let records = try log.readAll()
        let offsets = records.map(\.offset)
        #expect(offsets == offsets.sorted() && Set(offsets).count == offsets.count)
        // The tombstones are still there (within delete.retention.ms), as tombstones.
        var table = try log.table()
        #expect(table["k3"] == .some(nil) && table["k7"] == .some(nil))
        table = table.filter { $0.value != nil }
        #expect(table.mapValues { $0! } == latest)
        // Below the active segment every key appears once.
        let keys = records.filter { $0.offset < log.firstDirtyOffset }.map { String(buffer: $0.key!) }
        #expect(keys.count == Set(keys).count && keys.count == 21)
        #expect(log.firstDirtyOffset == log.segmentBaseOffsets.last!)
        // Batches written again keep their codec; the kept records their timestamps.
        for header in try log.batchHeaders() where header.recordCount > 0 {
            #expect(header.attributes.compression == compression)
        }
        for record in records { #expect(record.timestamp >= 1_700_000_000_000 && record.timestamp < 1_700_000_000_010) }
    }

    @Test("tombstones get a delete horizon at the first cleaning and go at the first cleaning after it")
    func tombstones() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let log = try openLog(folder.path, config: compactedConfig(deleteRetentionMs: 60_000))
        _ = try fill(log)
        try #require(try log.clean(memoryBytes: 1 << 20, now: Self.now) != nil)
        let stamped = try log.batchHeaders().filter(\.attributes.hasDeleteHorizon)
        #expect(stamped.count == 1)
        #expect(stamped.first?.baseTimestamp == Self.now + 60_000)
        // More updates make the log dirty again; a cleaning before the horizon keeps the tombstones.
        try log.appendUpdates([Update(key: "k1", value: "again")])
        try log.appendUntilRolled(Update(key: "k2", value: "again"))
        try #require(try log.clean(memoryBytes: 1 << 20, now: Self.now + 59_000) != nil)
        #expect(try log.table()["k3"] == .some(nil))
        try log.appendUpdates([Update(key: "k1", value: "third")])
        try log.appendUntilRolled(Update(key: "k2", value: "third"))
        try #require(try log.clean(memoryBytes: 1 << 20, now: Self.now + 60_000) != nil)
        let table = try log.table()
        #expect(table["k3"] == nil && table["k7"] == nil)
        #expect(table["k1"] == .some("third"))
        // An older value of a deleted key never comes back.
        #expect(!(try log.readAll()).contains { String(buffer: $0.key!) == "k3" })
    }

    @Test("a map smaller than the keys cleans in passes, within its memory, with the same result")
    func passes() throws {
        let small = try TemporaryDirectory()
        let large = try TemporaryDirectory()
        defer {
            small.remove()
            large.remove()
        }
        let logs = [
            try openLog(small.path, config: compactedConfig()), try openLog(large.path, config: compactedConfig()),
        ]
        for log in logs { _ = try fill(log) }
        let budget = 16 * KeyOffsetMap.bytesPerSlot  // 14 keys a pass; the log has 20
        let inPasses = try #require(try logs[0].clean(memoryBytes: budget, now: Self.now))
        let inOne = try #require(try logs[1].clean(memoryBytes: 1 << 20, now: Self.now))
        #expect(inPasses.passes > 1)
        #expect(inPasses.mapBytes <= budget)
        #expect(inOne.passes == 1)
        #expect(try logs[0].table() == logs[1].table())
        #expect(try logs[0].readAll().map(\.offset) == logs[1].readAll().map(\.offset))
    }

    @Test("a delete past the end of a pass's map stays, so the key's older value never comes back")
    func deletePastTheMap() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let log = try openLog(folder.path, config: compactedConfig(segmentBytes: 4096, deleteRetentionMs: 0))
        var updates = (0..<40).map { Update(key: "k\($0)", value: "v") }
        updates.append(Update(key: "x", value: "alive"))
        updates += (40..<80).map { Update(key: "k\($0)", value: "v") }
        updates.append(Update(key: "x", value: nil))
        try log.appendUpdates(updates)
        try log.appendUntilRolled(Update(key: "filler", value: String(repeating: "f", count: 500)))
        // A map of 14 keys a pass: "x"'s delete lies past the first passes' maps.
        for now in [Self.now, Self.now + 1, Self.now + 2] {
            _ = try log.clean(memoryBytes: 16 * KeyOffsetMap.bytesPerSlot, now: now)
            let x = try log.readAll().filter { String(buffer: $0.key!) == "x" }
            #expect(x.allSatisfy { $0.value == nil }, "x must read as deleted, not \(x)")
        }
    }

    @Test("the active segment and segments younger than min.compaction.lag.ms are not cleaned")
    func cleanableSection() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        var config = compactedConfig()
        config.minCompactionLagMs = 50_000
        let log = try openLog(folder.path, config: config)
        try log.appendUpdates((0..<6).map { Update(key: "a", value: "old\($0)") }, timestamp: Self.now - 100_000)
        try log.appendUpdates((0..<6).map { Update(key: "a", value: "old\($0 + 6)") }, timestamp: Self.now - 100_000)
        try log.appendUpdates((0..<6).map { Update(key: "a", value: "new\($0)") }, timestamp: Self.now - 1_000)
        try log.appendUpdates((0..<6).map { Update(key: "a", value: "new\($0 + 6)") }, timestamp: Self.now - 1_000)
        try log.appendUpdates([Update(key: "a", value: "active")], timestamp: Self.now)
        let section = try #require(log.cleanableSection(now: Self.now))
        let young = log.segmentBaseOffsets.first { $0 >= 12 }!
        #expect(section.firstUncleanableOffset == young)
        try #require(try log.clean(memoryBytes: 1 << 20, now: Self.now) != nil)
        let values = try log.readAll().map { String(buffer: $0.value!) }
        #expect(values.filter { $0.hasPrefix("old") } == ["old11"])
        #expect(values.filter { $0.hasPrefix("new") }.count == 12)
        #expect(values.last == "active")
    }

    @Test("each idempotent producer's last batch stays, emptied, and deduplication works after a restart")
    func producerState() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        var log = try openLog(folder.path, config: compactedConfig(segmentBytes: 200))
        try log.appendUpdates([Update(key: "a", value: "1")], producerID: 7, baseSequence: 0)
        try log.appendUpdates([Update(key: "a", value: "2")], producerID: 7, baseSequence: 1)
        try log.appendUpdates([Update(key: "a", value: "3")])
        try log.appendUpdates([Update(key: "a", value: "4")])
        try log.appendUpdates([Update(key: "b", value: "5")])
        try #require(try log.clean(memoryBytes: 1 << 20, now: Self.now) != nil)
        let headers = try log.batchHeaders()
        let producerBatches = headers.filter { $0.producerID == 7 }
        #expect(producerBatches.map(\.baseSequence) == [1])
        #expect(producerBatches.first?.recordCount == 0)
        try log.close()
        // Without snapshots the producer state comes from the log: the emptied batch still says sequence 1.
        for name in files(in: folder.path) where name.hasSuffix(".snapshot") {
            try FileManager.default.removeItem(atPath: folder.path + "/" + name)
        }
        log = try openLog(folder.path, config: compactedConfig(segmentBytes: 200))
        var builder = RecordBatchBuilder(producerID: 7, producerEpoch: 0, baseSequence: 1)
        builder.append(key: ByteBuffer(string: "a"), value: ByteBuffer(string: "2"), timestamp: 1)
        let retry = try builder.build()
        let result = try log.append(retry, header: RecordBatchValidator.validateProduced(retry), now: Self.now)
        #expect(result.isDuplicate)
        #expect(result.baseOffset == 1)
    }

    @Test("a cleaning told to stop part-way leaves the log as it was and no files behind")
    func stopped() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let log = try openLog(folder.path, config: compactedConfig())
        _ = try fill(log)
        let before = try log.readAll()
        let asked = Mutex(0)
        #expect(throws: PartitionLog.CleaningStopped.self) {
            try log.clean(memoryBytes: 1 << 20, now: Self.now) { _ in
                !asked.withLock {
                    $0 += 1
                    return $0 > 40
                }
            }
        }
        #expect(asked.withLock { $0 } > 40, "stopped while writing, after the map was built")
        #expect(try log.readAll() == before)
        #expect(log.firstDirtyOffset == 0)
        #expect(!files(in: folder.path).contains { $0.hasSuffix(".cleaned") || $0.hasSuffix(".swap") })
    }

    @Test("compact-only logs are not cut by retention; compact,delete logs are")
    func retention() throws {
        for deletes in [false, true] {
            let folder = try TemporaryDirectory()
            defer { folder.remove() }
            var config = compactedConfig()
            config.deletesByRetention = deletes
            config.retentionMs = 1_000
            let log = try openLog(folder.path, config: config)
            _ = try fill(log)
            try log.enforceRetention(now: Self.now)
            #expect((log.logStartOffset > 0) == deletes)
        }
    }

    @Test("the cleaner checkpoint survives a restart; a dirty log's ratio is reported")
    func checkpoint() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        var config = compactedConfig()
        config.minCleanableDirtyRatio = 0.5
        let manager = try LogManager(directory: folder.path, defaults: config, logger: testLogger)
        _ = try manager.createTopic(name: "status", partitionCount: 1, configOverrides: ["cleanup.policy": "compact"])
        let log = try #require(manager.partition(topic: "status", partition: 0))
        _ = try fill(log)
        let before = try #require(log.cleanableSection(now: Self.now))
        #expect(before.dirtyRatio == 1 && before.needsCleaning)
        let cleaner = LogCleaner(logs: manager, configuration: LogCleanerConfiguration(), logger: testLogger)
        let result = try #require(try cleaner.cleanNow(TopicPartition("status", 0)))
        let after = try #require(log.cleanableSection(now: Self.now))
        #expect(after.dirtyRatio == 0 && !after.needsCleaning)
        try manager.shutdown()
        let reopened = try LogManager(directory: folder.path, defaults: config, logger: testLogger)
        #expect(reopened.partition(topic: "status", partition: 0)?.firstDirtyOffset == result.firstDirtyOffset)
    }

    @Test("cleanup.policy takes delete, compact or both; other values are refused")
    func policyConfig() throws {
        let base = LogConfig()
        #expect(try base.applying(["cleanup.policy": "compact"]).compacts)
        #expect(try !base.applying(["cleanup.policy": "compact"]).deletesByRetention)
        let both = try base.applying(["cleanup.policy": "compact, delete"])
        #expect(both.compacts && both.deletesByRetention)
        #expect(throws: LogConfigError.self) { try base.applying(["cleanup.policy": "shred"]) }
        #expect(TopicConfigs.named("cleanup.policy")?.value(defaultingTo: both) == "compact,delete")
    }
}

@Suite("Cleaned batches")
struct CleanedBatchTests {
    @Test("a stamped batch keeps every record's timestamp; an emptied one keeps its offsets and sequences")
    func rebuild() throws {
        var builder = RecordBatchBuilder(compression: .gzip, producerID: 3, producerEpoch: 1, baseSequence: 10)
        for index in 0..<4 {
            builder.append(
                key: ByteBuffer(string: "k\(index)"),
                value: index == 2 ? nil : ByteBuffer(string: "v\(index)"),
                timestamp: 1_000 + Int64(index) * 7
            )
        }
        var bytes = try builder.build()
        bytes.setInteger(Int64(500), at: 0)
        let header = try #require(RecordBatchHeader(peekingAt: 0, in: bytes))
        let stored = StoredBatch(header: header, bytes: bytes)
        let records = try stored.records()
        #expect(records.map(\.isTombstone) == [false, false, true, false])
        let rebuilt = try CleanedBatch.build(original: header, kept: [records[1], records[2]], deleteHorizon: 99_000)
        let decoded = try #require(try RecordBatchDecoder.decodeBatches(rebuilt).first)
        #expect(decoded.header.attributes.hasDeleteHorizon)
        #expect(decoded.header.attributes.compression == .gzip)
        #expect(decoded.header.baseOffset == 500 && decoded.header.lastOffsetDelta == 3)
        #expect(decoded.header.baseSequence == 10 && decoded.header.producerEpoch == 1)
        #expect(decoded.records.map(\.offset) == [501, 502])
        #expect(decoded.records.map(\.timestamp) == [1_007, 1_014])
        #expect(decoded.records[1].value == nil)
        #expect(decoded.header.maxTimestamp == 1_014)
        let empty = CleanedBatch.empty(original: header)
        let emptied = try #require(try RecordBatchDecoder.decodeBatches(empty).first)
        #expect(emptied.records.isEmpty)
        #expect(emptied.header.nextOffset == 504 && emptied.header.lastSequence == 13)
        #expect(emptied.header.attributes.compression == CompressionCodec.none)
    }

    @Test("a compacted topic's producers must give every record a key")
    func keylessRefused() throws {
        for codec in [CompressionCodec.none, .gzip] {
            var builder = RecordBatchBuilder(compression: codec)
            builder.append(key: ByteBuffer(string: "a"), value: ByteBuffer(string: "1"), timestamp: 1)
            builder.append(key: nil, value: ByteBuffer(string: "2"), timestamp: 1)
            let batch = try builder.build()
            #expect(throws: Never.self) { _ = try RecordBatchValidator.validateProduced(batch) }
            #expect(throws: RecordBatchError.self) {
                try RecordBatchValidator.validateProduced(batch, requireKeys: true)
            }
            do {
                _ = try RecordBatchValidator.validateProduced(batch, requireKeys: true)
            } catch {
                #expect(error.code == .invalidRecord)
                #expect(error.message.contains("without a key"))
            }
        }
    }
}
