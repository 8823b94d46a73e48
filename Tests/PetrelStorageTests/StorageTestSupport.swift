import Foundation
import Logging
import NIOCore
import PetrelProtocol
import PetrelStorage
import PetrelTestSupport

let testLogger = Logger(label: "petrel.test")

/// A batch of `count` records whose values say which record they are; timestamps from `timestamp` up.
func makeBatch(
    count: Int,
    timestamp: Int64 = 1_700_000_000_000,
    valueSize: Int = 20,
    tag: String = "r"
) throws -> (ByteBuffer, RecordBatchHeader) {
    var builder = RecordBatchBuilder()
    for index in 0..<count {
        let value = "\(tag)\(index)-" + String(repeating: "x", count: max(0, valueSize - tag.count - 4))
        builder.append(
            key: ByteBuffer(string: "k\(index)"),
            value: ByteBuffer(string: value),
            timestamp: timestamp + Int64(index)
        )
    }
    let batch = try builder.build()
    return (batch, try RecordBatchValidator.validateProduced(batch))
}

extension PartitionLog {
    /// Appends a batch of `count` records and returns its base offset.
    @discardableResult
    func appendRecords(
        _ count: Int,
        timestamp: Int64 = 1_700_000_000_000,
        valueSize: Int = 20,
        now: Int64 = 1_700_000_000_000
    )
        throws -> Int64
    {
        let (batch, header) = try makeBatch(count: count, timestamp: timestamp, valueSize: valueSize)
        return try append(batch, header: header, now: now).baseOffset
    }

    /// Every record from `offset` to the end, read through the fetch path.
    func readAll(from offset: Int64 = 0, maxBytes: Int = 1 << 20) throws -> [Record] {
        var records: [Record] = []
        var next = offset
        while next < logEndOffset {
            guard let slice = try read(from: next, maxBytes: maxBytes).slice else { break }
            let batches = try RecordBatchDecoder.decodeBatches(try slice.readBytes())
            records += batches.flatMap(\.records).filter { $0.offset >= next }
            next = batches.last!.header.nextOffset
        }
        return records
    }
}

func openLog(_ directory: String, config: LogConfig = LogConfig(), clean: Bool = false) throws -> PartitionLog {
    try PartitionLog(
        directory: directory,
        topic: "t",
        partition: 0,
        config: config,
        cleanShutdown: clean,
        logger: testLogger
    )
}

func files(in directory: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
}
