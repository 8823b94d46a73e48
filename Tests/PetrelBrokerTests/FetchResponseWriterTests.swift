import Foundation
import Logging
import NIOCore
import PetrelProtocol
import PetrelStorage
import PetrelTestSupport
import Testing

@testable import PetrelBroker

@Suite("Zero-copy fetch responses")
struct FetchResponseWriterTests {
    @Test("the split frame, with file bytes inlined, equals the generated encoding", arguments: Array(Int16(4)...12))
    func matchesGeneratedEncoding(version: Int16) throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let log = try PartitionLog(
            directory: folder.path,
            topic: "t",
            partition: 0,
            config: LogConfig(),
            cleanShutdown: false,
            logger: Logger(label: "test")
        )
        for round in 0..<3 {
            let records = try batch(["v\(round)", "w\(round)"])
            _ = try log.append(records, header: try RecordBatchValidator.validateProduced(records), now: 0)
        }
        let slice = try #require(try log.read(from: 2, maxBytes: 1 << 20).slice)
        let topics = [
            FetchResponseWriter.Topic(
                name: "t",
                partitions: [
                    .init(
                        index: 0,
                        errorCode: .none,
                        highWatermark: 6,
                        logStartOffset: 0,
                        lastStableOffset: 5,
                        abortedTransactions: [
                            AbortedTransaction(producerID: 7, firstOffset: 1, lastOffset: 4, lastStableOffset: 5)
                        ],
                        records: slice
                    ),
                    .init(
                        index: 1,
                        errorCode: .offsetOutOfRange,
                        highWatermark: 9,
                        logStartOffset: 2,
                        lastStableOffset: 9,
                        records: nil
                    ),
                ]
            ),
            FetchResponseWriter.Topic(
                name: "u",
                partitions: [
                    .init(
                        index: 3,
                        errorCode: .none,
                        highWatermark: 0,
                        logStartOffset: 0,
                        lastStableOffset: 0,
                        records: nil
                    )
                ]
            ),
        ]
        let frame = FetchResponseWriter.frame(
            correlationID: 42,
            version: version,
            topics: topics,
            allocator: ByteBufferAllocator()
        )
        #expect(frame.parts.count == 3)
        var written = ByteBuffer()
        for part in frame.parts {
            switch part {
            case .bytes(let bytes): written.writeImmutableBuffer(bytes)
            case .file(let file): written.writeImmutableBuffer(try file.readBytes())
            }
        }

        let expected = FetchResponse(
            throttleTimeMs: 0,
            errorCode: .none,
            sessionId: 0,
            responses: [
                .init(
                    topic: "t",
                    partitions: [
                        .init(
                            partitionIndex: 0,
                            errorCode: .none,
                            highWatermark: 6,
                            lastStableOffset: 5,
                            logStartOffset: 0,
                            abortedTransactions: [.init(producerId: 7, firstOffset: 1)],
                            records: try slice.readBytes()
                        ),
                        .init(
                            partitionIndex: 1,
                            errorCode: .offsetOutOfRange,
                            highWatermark: 9,
                            lastStableOffset: 9,
                            logStartOffset: 2,
                            records: ByteBuffer()
                        ),
                    ]
                ),
                .init(
                    topic: "u",
                    partitions: [
                        .init(
                            partitionIndex: 3,
                            highWatermark: 0,
                            lastStableOffset: 0,
                            logStartOffset: 0,
                            records: ByteBuffer()
                        )
                    ]
                ),
            ]
        )
        var reference = ByteBuffer()
        reference.writeInteger(Int32(0))
        ResponseHeader(correlationID: 42).write(
            to: &reference,
            headerVersion: FetchResponse.headerVersion(for: version)
        )
        expected.write(to: &reference, version: version)
        reference.setInteger(Int32(reference.readableBytes - 4), at: 0)
        #expect(written == reference)
        #expect(frame.byteCount == reference.readableBytes)
    }
}
