import Foundation
import NIOCore
import PetrelProtocol
import PetrelTestSupport
import Testing

@testable import PetrelStorage

@Suite("Idempotent producer state")
struct ProducerStateTests {
    func batch(
        producer: Int64 = 7,
        epoch: Int16 = 0,
        sequence: Int32,
        count: Int = 2,
        timestamp: Int64 = wallClockMillis()
    ) throws -> (ByteBuffer, RecordBatchHeader) {
        var builder = RecordBatchBuilder(producerID: producer, producerEpoch: epoch, baseSequence: sequence)
        for index in 0..<count {
            builder.append(key: nil, value: ByteBuffer(string: "s\(sequence)-\(index)"), timestamp: timestamp)
        }
        let bytes = try builder.build()
        return (bytes, try RecordBatchValidator.validateProduced(bytes))
    }

    func append(
        _ log: PartitionLog,
        _ made: (ByteBuffer, RecordBatchHeader),
        now: Int64 = wallClockMillis()
    ) throws
        -> PartitionLog.AppendResult
    {
        try log.append(made.0, header: made.1, now: now)
    }

    func code(_ body: () throws -> Any) -> ErrorCode? {
        do {
            _ = try body()
            return nil
        } catch let error as PartitionLog.ProducerSequenceError {
            return error.code
        } catch {
            return .unknownServerError
        }
    }

    @Test("a retried batch gets its original offsets and is not written again")
    func duplicate() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let log = try openLog(folder.path)
        let first = try batch(sequence: 0)
        #expect(try append(log, first).baseOffset == 0)
        #expect(try append(log, try batch(sequence: 2)).baseOffset == 2)
        let retry = try append(log, first)
        #expect(retry.isDuplicate && retry.baseOffset == 0 && retry.lastOffset == 1)
        #expect(log.logEndOffset == 4)
        #expect(try log.readAll().count == 4)
    }

    @Test("a gap is OUT_OF_ORDER_SEQUENCE_NUMBER and changes nothing: the next in-order batch still goes in")
    func gap() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let log = try openLog(folder.path)
        _ = try append(log, try batch(sequence: 0))
        #expect(code { try append(log, try batch(sequence: 5)) } == .outOfOrderSequenceNumber)
        #expect(log.logEndOffset == 2)
        #expect(try append(log, try batch(sequence: 2)).baseOffset == 2)
    }

    @Test("epochs: an older one is fenced, a newer one must start at sequence 0")
    func epochs() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let log = try openLog(folder.path)
        _ = try append(log, try batch(epoch: 1, sequence: 0))
        #expect(code { try append(log, try batch(epoch: 0, sequence: 2)) } == .invalidProducerEpoch)
        #expect(code { try append(log, try batch(epoch: 2, sequence: 2)) } == .outOfOrderSequenceNumber)
        #expect(try append(log, try batch(epoch: 2, sequence: 0)).isDuplicate == false)
        #expect(code { try append(log, try batch(epoch: 1, sequence: 2)) } == .invalidProducerEpoch)
    }

    @Test("only the last five batches are remembered; an unknown producer may start anywhere")
    func window() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let log = try openLog(folder.path)
        for round in 0..<7 { _ = try append(log, try batch(sequence: Int32(round * 2))) }
        #expect(try append(log, try batch(sequence: 4)).isDuplicate)  // the 3rd batch: still cached
        #expect(code { try append(log, try batch(sequence: 2)) } == .outOfOrderSequenceNumber)  // the 2nd: gone
        #expect(try append(log, try batch(producer: 99, sequence: 1234)).isDuplicate == false)
        #expect(try append(log, try batch(producer: 99, sequence: 1236)).isDuplicate == false)
    }

    @Test("dedup still works after a restart, clean or not, with or without snapshots", arguments: [true, false])
    func afterRestart(clean: Bool) throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        var config = LogConfig()
        config.segmentBytes = 400  // rolls, and so snapshots, along the way
        let batches = try (0..<10).map { try batch(sequence: Int32($0 * 2)) }
        do {
            let log = try openLog(folder.path, config: config)
            for made in batches { _ = try append(log, made) }
            #expect(log.segmentCount > 2)
            if clean { try log.close() }
        }
        #expect(!ProducerSnapshot.offsets(in: folder.path).isEmpty)
        let reopened = try openLog(folder.path, config: config, clean: clean)
        let retry = try append(reopened, batches[9])
        #expect(retry.isDuplicate && retry.baseOffset == 18)
        #expect(code { try append(reopened, try batch(sequence: 30)) } == .outOfOrderSequenceNumber)
        #expect(try append(reopened, try batch(sequence: 20)).baseOffset == 20)

        // Without any snapshot the state is rebuilt from the log alone.
        for offset in ProducerSnapshot.offsets(in: folder.path) {
            try FileManager.default.removeItem(atPath: folder.path + "/" + ProducerSnapshot.fileName(offset: offset))
        }
        let rebuilt = try openLog(folder.path, config: config, clean: false)
        #expect(try append(rebuilt, batches[9]).isDuplicate)
    }

    @Test("producers silent for longer than the expiration are forgotten at the next snapshot")
    func expiration() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let stale = try batch(producer: 1, sequence: 0)
        let fresh = try batch(producer: 2, sequence: 0)
        do {
            let log = try openLog(folder.path)
            _ = try append(log, stale, now: wallClockMillis() - PartitionLog.producerExpirationMs - 60_000)
            _ = try append(log, fresh)
            try log.close()
        }
        let reopened = try openLog(folder.path, clean: true)
        #expect(try append(reopened, fresh).isDuplicate)
        // Producer 1 is unknown again, so its old batch is not recognised: it is appended anew.
        #expect(try append(reopened, stale).isDuplicate == false)
    }

    @Test("a corrupt snapshot is ignored in favour of the log")
    func corruptSnapshot() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let first = try batch(sequence: 0)
        do {
            let log = try openLog(folder.path)
            _ = try append(log, first)
            try log.close()
        }
        let snapshot = folder.path + "/" + ProducerSnapshot.fileName(offset: 2)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: snapshot))
        bytes[bytes.count - 6] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: snapshot))
        let reopened = try openLog(folder.path, clean: true)
        #expect(try append(reopened, first).isDuplicate)
    }
}
