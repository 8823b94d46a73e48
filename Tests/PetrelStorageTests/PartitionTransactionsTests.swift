import Foundation
import NIOCore
import PetrelProtocol
import PetrelTestSupport
import Testing

@testable import PetrelStorage

/// Transactions on the partition side: markers, the last stable offset, the aborted-transaction index,
/// read_committed reads, and all of it after a restart.
@Suite("Partition transactions")
struct PartitionTransactionsTests {
    static let now: Int64 = 1_700_000_000_000

    /// Appends a transactional batch of `updates` for `producer` at `epoch`, sequences from `sequence`.
    @discardableResult
    private func appendTransactional(
        _ log: PartitionLog,
        producer: Int64,
        epoch: Int16 = 0,
        sequence: Int32,
        _ updates: [Update]
    ) throws -> PartitionLog.AppendResult {
        var builder = RecordBatchBuilder(
            producerID: producer,
            producerEpoch: epoch,
            baseSequence: sequence,
            isTransactional: true
        )
        for update in updates {
            builder.append(
                key: ByteBuffer(string: update.key),
                value: update.value.map { ByteBuffer(string: $0) },
                timestamp: Self.now
            )
        }
        let batch = try builder.build()
        return try log.append(batch, header: RecordBatchValidator.validateProduced(batch), now: Self.now)
    }

    private func values(_ batches: [RecordBatch]) -> [String] {
        batches.filter { !$0.header.attributes.isControl }.flatMap(\.records).map { String(buffer: $0.value!) }
    }

    @Test("an open transaction holds the last stable offset; read_committed reads stop there")
    func lastStableOffset() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let log = try openLog(folder.path)
        try log.appendUpdates([Update(key: "a", value: "plain")])
        try appendTransactional(log, producer: 7, sequence: 0, [Update(key: "b", value: "open")])
        try log.appendUpdates([Update(key: "c", value: "after")])
        #expect(log.lastStableOffset == 1 && log.logEndOffset == 3)
        let committedRead = try log.read(from: 0, maxBytes: 1 << 20, readCommitted: true)
        #expect(committedRead.lastStableOffset == 1 && committedRead.highWatermark == 3)
        let visible = try RecordBatchDecoder.decodeBatches(try #require(committedRead.slice).readBytes())
        #expect(values(visible) == ["plain"])
        #expect(try log.read(from: 1, maxBytes: 1 << 20, readCommitted: true).slice == nil)
        #expect(try log.read(from: 1, maxBytes: 1 << 20).slice != nil, "read_uncommitted sees it all")

        let markerOffset = try log.appendMarker(
            ControlRecord(kind: .commit),
            producerID: 7,
            producerEpoch: 0,
            now: Self.now
        )
        #expect(markerOffset == 3)
        #expect(log.lastStableOffset == 4 && log.abortedTransactions.isEmpty)
        let all = try RecordBatchDecoder.decodeBatches(
            try #require(try log.read(from: 0, maxBytes: 1 << 20, readCommitted: true).slice).readBytes()
        )
        #expect(values(all) == ["plain", "open", "after"])
        let marker = try #require(all.last)
        #expect(marker.header.attributes.isControl && marker.header.attributes.isTransactional)
        #expect(marker.header.producerID == 7 && marker.header.baseSequence == -1)
        let body = try #require(try log.read(from: 3, maxBytes: 1 << 20).slice).readBytes()
        #expect(ControlRecord.read(body: body.getSlice(at: 61, length: body.readableBytes - 61)!)?.kind == .commit)
    }

    @Test("an abort is indexed: read_committed reads list it with its first offset, for the ranges it overlaps")
    func abortedIndex() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let log = try openLog(folder.path)
        try appendTransactional(log, producer: 7, sequence: 0, [Update(key: "a", value: "x1")])  // 0
        try appendTransactional(log, producer: 8, sequence: 0, [Update(key: "b", value: "y1")])  // 1
        try appendTransactional(log, producer: 7, sequence: 1, [Update(key: "a", value: "x2")])  // 2
        try log.appendMarker(ControlRecord(kind: .abort), producerID: 7, producerEpoch: 0, now: Self.now)  // 3
        #expect(log.lastStableOffset == 1, "producer 8's transaction is still open")
        try log.appendMarker(ControlRecord(kind: .commit), producerID: 8, producerEpoch: 0, now: Self.now)  // 4
        #expect(log.lastStableOffset == 5)
        let expected = AbortedTransaction(producerID: 7, firstOffset: 0, lastOffset: 3, lastStableOffset: 1)
        #expect(log.abortedTransactions == [expected])
        #expect(try log.read(from: 0, maxBytes: 1 << 20, readCommitted: true).abortedTransactions == [expected])
        #expect(try log.read(from: 3, maxBytes: 1 << 20, readCommitted: true).abortedTransactions == [expected])
        #expect(try log.read(from: 4, maxBytes: 1 << 20, readCommitted: true).abortedTransactions.isEmpty)
        #expect(try log.read(from: 0, maxBytes: 1 << 20).abortedTransactions.isEmpty, "only read_committed asks")
        let index = try TransactionIndex.read(directory: folder.path, baseOffset: 0)
        #expect(index == [expected])
    }

    @Test("after a clean restart and after a crash, open transactions and aborts are as they were")
    func restart() throws {
        for clean in [true, false] {
            let folder = try TemporaryDirectory()
            defer { folder.remove() }
            var config = LogConfig()
            config.segmentBytes = 300
            var log = try openLog(folder.path, config: config)
            for sequence in 0..<4 {
                try appendTransactional(
                    log,
                    producer: 7,
                    sequence: Int32(sequence),
                    [Update(key: "a", value: "aborted")]
                )
            }
            try log.appendMarker(ControlRecord(kind: .abort), producerID: 7, producerEpoch: 0, now: Self.now)
            try appendTransactional(log, producer: 9, sequence: 0, [Update(key: "b", value: "open")])
            let open = log.lastStableOffset
            let aborted = log.abortedTransactions
            #expect(log.segmentCount > 1)
            if clean { try log.close() }
            log = try openLog(folder.path, config: config, clean: clean)
            #expect(log.lastStableOffset == open)
            #expect(log.abortedTransactions == aborted)
            #expect(log.activeProducers.first { $0.producerID == 9 }?.currentTransactionStartOffset == open)
            try log.appendMarker(ControlRecord(kind: .commit), producerID: 9, producerEpoch: 0, now: Self.now)
            #expect(log.lastStableOffset == log.logEndOffset)
        }
    }

    @Test("an index entry lost in a crash is written again from the log")
    func lostIndexEntry() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        var log = try openLog(folder.path)
        try appendTransactional(log, producer: 7, sequence: 0, [Update(key: "a", value: "aborted")])
        try log.appendMarker(ControlRecord(kind: .abort), producerID: 7, producerEpoch: 0, now: Self.now)
        let aborted = log.abortedTransactions
        try FileManager.default.removeItem(atPath: TransactionIndex.path(directory: folder.path, baseOffset: 0))
        for name in files(in: folder.path) where name.hasSuffix(".snapshot") {
            try FileManager.default.removeItem(atPath: folder.path + "/" + name)
        }
        log = try openLog(folder.path)
        #expect(log.abortedTransactions == aborted)
        #expect(try TransactionIndex.read(directory: folder.path, baseOffset: 0) == aborted)
    }

    @Test("a marker at an older epoch is refused; one at a newer epoch fences the producer's older batches")
    func markerEpochs() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let log = try openLog(folder.path)
        try appendTransactional(log, producer: 7, epoch: 2, sequence: 0, [Update(key: "a", value: "v")])
        #expect(throws: PartitionLog.MarkerRefused.self) {
            try log.appendMarker(ControlRecord(kind: .abort), producerID: 7, producerEpoch: 1, now: Self.now)
        }
        try log.appendMarker(ControlRecord(kind: .abort), producerID: 7, producerEpoch: 3, now: Self.now)
        #expect(log.lastStableOffset == log.logEndOffset)
        #expect(throws: PartitionLog.ProducerSequenceError.self) {
            try appendTransactional(log, producer: 7, epoch: 2, sequence: 1, [Update(key: "a", value: "zombie")])
        }
    }

    @Test("the cleaner never cleans past an open transaction, and an aborted value never replaces a committed one")
    func cleaning() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let log = try openLog(folder.path, config: compactedConfig(segmentBytes: 200))
        try log.appendUpdates([Update(key: "a", value: "committed")])
        try appendTransactional(log, producer: 7, sequence: 0, [Update(key: "a", value: "aborted")])
        try log.appendMarker(ControlRecord(kind: .abort), producerID: 7, producerEpoch: 0, now: Self.now)
        try appendTransactional(log, producer: 8, sequence: 0, [Update(key: "b", value: "open")])
        try log.appendUntilRolled(Update(key: "c", value: "filler"))
        let section = try #require(log.cleanableSection(now: Self.now))
        #expect(section.firstUncleanableOffset <= 3, "stops at producer 8's open transaction")
        _ = try log.clean(memoryBytes: 1 << 20, now: Self.now)
        let committed = try log.read(from: 0, maxBytes: 1 << 20, readCommitted: true)
        let batches = try RecordBatchDecoder.decodeBatches(try #require(committed.slice).readBytes())
        let aborted = Set(committed.abortedTransactions.map(\.producerID))
        let visible = batches.filter { !$0.header.attributes.isControl && !aborted.contains($0.header.producerID) }
            .flatMap(\.records).map { String(buffer: $0.value!) }
        #expect(visible.first == "committed")
        #expect(!(try log.readAll()).contains { $0.value.map { String(buffer: $0) } == "aborted" })
    }
}
