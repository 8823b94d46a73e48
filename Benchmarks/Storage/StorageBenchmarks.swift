// The storage layer alone: appending 16 KiB record batches to a partition log, and reading them back
// through the fetch path's lookups; and the log cleaner (CleanerBenchmarks.swift). Throughput is
// reported, not asserted.

import Benchmark
import Foundation
import Logging
import NIOCore
import PetrelProtocol
import PetrelStorage

let batchBytes = 16 * 1024
let batchesPerIteration = 256  // 4 MiB per iteration

/// One ~16 KiB batch of 64 records of 240 bytes each.
func sixteenKiBBatch() throws -> (ByteBuffer, RecordBatchHeader) {
    var builder = RecordBatchBuilder()
    let value = ByteBuffer(repeating: 0x61, count: batchBytes / 64 - 16)
    for index in 0..<64 {
        builder.append(
            key: ByteBuffer(string: "key-\(index)"),
            value: value,
            timestamp: 1_700_000_000_000 + Int64(index)
        )
    }
    let batch = try builder.build()
    return (batch, try RecordBatchValidator.validateProduced(batch))
}

func temporaryLog(segmentBytes: Int = 1 << 30) throws -> (PartitionLog, String) {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-bench-\(UUID().uuidString)").path
    var config = LogConfig()
    config.segmentBytes = segmentBytes
    let log = try PartitionLog(
        directory: folder,
        topic: "bench",
        partition: 0,
        config: config,
        cleanShutdown: false,
        logger: Logger(label: "bench")
    )
    return (log, folder)
}

/// The offset after the last whole batch in `bytes`.
func nextOffset(after bytes: ByteBuffer) -> Int64 {
    var index = bytes.readerIndex
    var next: Int64 = 0
    while let header = RecordBatchHeader(peekingAt: index, in: bytes), index + header.totalSize <= bytes.writerIndex {
        next = header.nextOffset
        index += header.totalSize
    }
    return next
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        maxDuration: .seconds(5),
        maxIterations: 200
    )

    Benchmark("append 16 KiB batches (4 MiB per iteration)", configuration: .init(scalingFactor: .one)) { benchmark in
        let (batch, header) = try sixteenKiBBatch()
        let (log, folder) = try temporaryLog(segmentBytes: 256 * 1024 * 1024)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for _ in 0..<batchesPerIteration {
                blackHole(try log.append(batch, header: header, now: 1_700_000_000_000))
            }
        }
        benchmark.stopMeasurement()
    }

    Benchmark("read 16 KiB batches back, 1 MiB per fetch (4 MiB per iteration)") { benchmark in
        let (batch, header) = try sixteenKiBBatch()
        let (log, folder) = try temporaryLog()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for _ in 0..<batchesPerIteration { _ = try log.append(batch, header: header, now: 0) }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            var offset: Int64 = 0
            while offset < log.logEndOffset {
                guard let slice = try log.read(from: offset, maxBytes: 1 << 20).slice else { break }
                let bytes = try slice.readBytes()
                blackHole(bytes)
                offset = nextOffset(after: bytes)
            }
        }
        benchmark.stopMeasurement()
    }

    cleanerBenchmarks()
}
