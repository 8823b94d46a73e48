// The protocol layer alone, no I/O: decoding and encoding Produce and Fetch messages, validating record
// batches, and CRC-32C. Each benchmark runs at two record counts (10 and 1,000 records per batch): the
// malloc counts staying the same across the two is what "no allocation per record" means.

import Benchmark
import NIOCore
import PetrelProtocol

let recordSizes = [10, 1_000]

/// One batch of `count` records with 100-byte values and 8-byte keys, as a producer would send.
func batch(records count: Int, compression: CompressionCodec = .none) throws -> ByteBuffer {
    var builder = RecordBatchBuilder(compression: compression, producerID: 7, producerEpoch: 0, baseSequence: 0)
    let value = ByteBuffer(repeating: 0x61, count: 100)
    for index in 0..<count {
        builder.append(
            key: ByteBuffer(string: "key-\(index % 10_000)"),
            value: value,
            timestamp: 1_700_000_000_000 + Int64(index)
        )
    }
    return try builder.build()
}

func produceRequest(records count: Int) throws -> ProduceRequest {
    ProduceRequest(
        acks: -1,
        timeoutMs: 30_000,
        topicData: [.init(name: "orders", partitionData: [.init(index: 0, records: try batch(records: count))])]
    )
}

func fetchResponse(records count: Int) throws -> FetchResponse {
    let records = try batch(records: count)
    return FetchResponse(responses: [
        .init(
            topic: "orders",
            partitions: [
                .init(
                    partitionIndex: 0,
                    highWatermark: Int64(count),
                    lastStableOffset: Int64(count),
                    logStartOffset: 0,
                    records: records
                )
            ]
        )
    ])
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        maxDuration: .seconds(3),
        maxIterations: 100_000
    )

    // CRC-32C over 1 MiB: the SSE4.2 instruction against the table-driven fallback used on CPUs without it.
    let mebibyte = [UInt8](repeating: 0x5a, count: 1 << 20)
    Benchmark("CRC-32C of 1 MiB, SSE4.2 (hardware: \(CRC32C.isHardwareAccelerated))") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(mebibyte.withUnsafeBytes { CRC32C.checksum($0) })
        }
    }
    Benchmark("CRC-32C of 1 MiB, table-driven fallback") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(mebibyte.withUnsafeBytes { CRC32C.portableChecksum($0) })
        }
    }

    for count in recordSizes {
        Benchmark("validate a produced batch, \(count) records of 100 B") { benchmark in
            let records = try batch(records: count)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(try RecordBatchValidator.validateProduced(records))
            }
        }
        Benchmark("validate a gzip batch (decompresses to count records), \(count) records of 100 B") { benchmark in
            let records = try batch(records: count, compression: .gzip)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(try RecordBatchValidator.validateProduced(records))
            }
        }
        Benchmark("decode ProduceRequest v9, \(count) records of 100 B") { benchmark in
            let encoded = try produceRequest(records: count).encoded(version: 9)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                var buffer = encoded
                blackHole(try ProduceRequest(from: &buffer, version: 9))
            }
        }
        Benchmark("encode ProduceRequest v9, \(count) records of 100 B") { benchmark in
            let request = try produceRequest(records: count)
            var buffer = ByteBuffer()
            buffer.reserveCapacity(256 + count * 120)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                buffer.clear()
                request.write(to: &buffer, version: 9)
                blackHole(buffer)
            }
        }
        Benchmark("decode FetchResponse v12, \(count) records of 100 B") { benchmark in
            let encoded = try fetchResponse(records: count).encoded(version: 12)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                var buffer = encoded
                blackHole(try FetchResponse(from: &buffer, version: 12))
            }
        }
        Benchmark("decode the records of a fetched batch, \(count) records of 100 B") { benchmark in
            let records = try batch(records: count)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(try RecordBatchDecoder.decodeBatches(records))
            }
        }
    }
}
