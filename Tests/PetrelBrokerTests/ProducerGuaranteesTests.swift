import NIOCore
import PetrelBroker
import PetrelBrokerTestSupport
import PetrelClient
import PetrelProtocol
import PetrelTestSupport
import Testing

@Suite("Producer guarantees")
struct ProducerGuaranteesTests {
    func idempotentBatch(
        producer: Int64,
        sequence: Int32,
        values: [String],
        codec: CompressionCodec = .none
    ) throws -> ByteBuffer {
        var builder = RecordBatchBuilder(
            compression: codec,
            producerID: producer,
            producerEpoch: 0,
            baseSequence: sequence
        )
        for value in values { builder.append(key: nil, value: ByteBuffer(string: value), timestamp: 1_700_000_000_000) }
        return try builder.build()
    }

    func send(
        _ connection: KafkaConnection,
        _ topic: String,
        _ records: ByteBuffer,
        version: Int16 = 9
    )
        async throws -> ProduceResponse.TopicProduceResponse.PartitionProduceResponse
    {
        try await connection.send(produceRequest(topic, records: records), version: version).responses[0]
            .partitionResponses[0]
    }

    @Test("the very same idempotent batch sent twice gets the same offset and is stored once, also after a restart")
    func duplicateBatch() async throws {
        let data = try TemporaryDirectory()
        defer { data.remove() }
        let producerID: Int64 = try await withBroker(dataDirectory: data.path) { _, port in
            try await withConnection(port) { connection in
                // The topic comes from Metadata's auto-creation, as a client would get it.
                let metadata = try await connection.send(
                    MetadataRequest(topics: [.init(name: "idem")], allowAutoTopicCreation: true)
                )
                #expect(metadata.topics[0].errorCode == ErrorCode.none)
                let producer = try await connection.send(
                    InitProducerIdRequest(transactionalId: nil, transactionTimeoutMs: 60_000)
                ).producerId
                _ = try await send(connection, "idem", try batch(["before"]))
                let batch = try idempotentBatch(producer: producer, sequence: 0, values: ["a", "b", "c"])
                let first = try await send(connection, "idem", batch)
                let second = try await send(connection, "idem", batch)
                #expect(first.errorCode == ErrorCode.none && second.errorCode == ErrorCode.none)
                #expect(first.baseOffset == 1 && second.baseOffset == 1)
                let gap = try await send(
                    connection,
                    "idem",
                    try idempotentBatch(producer: producer, sequence: 9, values: ["x"])
                )
                #expect(gap.errorCode == ErrorCode.outOfOrderSequenceNumber)
                #expect(gap.errorCode == .outOfOrderSequenceNumber)
                #expect(try await fetchAllValues(connection, "idem") == ["before", "a", "b", "c"])
                return producer
            }
        }
        try await withBroker(dataDirectory: data.path) { _, port in
            try await withConnection(port) { connection in
                let retried = try await send(
                    connection,
                    "idem",
                    try idempotentBatch(producer: producerID, sequence: 0, values: ["a", "b", "c"])
                )
                #expect(retried.errorCode == ErrorCode.none && retried.baseOffset == 1)
                let next = try await send(
                    connection,
                    "idem",
                    try idempotentBatch(producer: producerID, sequence: 3, values: ["d"])
                )
                #expect(next.errorCode == ErrorCode.none && next.baseOffset == 4)
                #expect(try await fetchAllValues(connection, "idem") == ["before", "a", "b", "c", "d"])
                // Producer ids stay unique across restarts.
                let fresh = try await connection.send(
                    InitProducerIdRequest(transactionalId: nil, transactionTimeoutMs: 60_000)
                ).producerId
                #expect(fresh != producerID)
            }
        }
    }

    @Test("a batch over max.message.bytes gets MESSAGE_TOO_LARGE and nothing is written")
    func tooLarge() async throws {
        try await withBroker(configure: { $0.log.maxMessageBytes = 2_000 }) { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "limited")
                let big = try await send(connection, "limited", try batch([String(repeating: "x", count: 3_000)]))
                #expect(big.errorCode == ErrorCode.messageTooLarge)
                let small = try await send(connection, "limited", try batch(["fits"]))
                #expect(small.errorCode == ErrorCode.none && small.baseOffset == 0)
                // A topic can allow more than the broker default.
                let created = try await connection.send(
                    CreateTopicsRequest(topics: [
                        .init(
                            name: "roomy",
                            numPartitions: 1,
                            replicationFactor: 1,
                            configs: [.init(name: "max.message.bytes", value: "10000")]
                        )
                    ])
                )
                #expect(created.topics[0].errorCode == ErrorCode.none)
                #expect(
                    try await send(connection, "roomy", try batch([String(repeating: "x", count: 3_000)])).errorCode
                        == ErrorCode.none
                )
            }
        }
    }

    @Test(
        "corrupt compressed batches get CORRUPT_MESSAGE and the log is unchanged",
        arguments: [CompressionCodec.gzip, .snappy, .lz4, .zstd]
    )
    func corruptCompressed(codec: CompressionCodec) async throws {
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "packed")
                var builder = RecordBatchBuilder(compression: codec)
                for index in 0..<20 {
                    builder.append(key: nil, value: ByteBuffer(string: "value \(index)"), timestamp: 1)
                }
                let good = try builder.build()
                #expect(try await send(connection, "packed", good).baseOffset == 0)

                var flipped = good
                flipped.setInteger(
                    flipped.getInteger(at: flipped.writerIndex - 3, as: UInt8.self)! ^ 0xFF,
                    at: flipped.writerIndex - 3
                )
                #expect(try await send(connection, "packed", flipped).errorCode == ErrorCode.corruptMessage)

                // Cut short, with the length and CRC made to match: only decompression can tell.
                var truncated = good.getSlice(at: 0, length: good.readableBytes - 6)!
                truncated.setInteger(Int32(truncated.readableBytes - 12), at: 8)
                truncated.setInteger(
                    CRC32C.checksum(truncated, at: 21, length: truncated.readableBytes - 21),
                    at: RecordBatchHeader.crcOffset
                )
                #expect(try await send(connection, "packed", truncated).errorCode == ErrorCode.corruptMessage)

                let end = try await connection.send(
                    ListOffsetsRequest(
                        replicaId: -1,
                        topics: [.init(name: "packed", partitions: [.init(partitionIndex: 0, timestamp: -1)])]
                    )
                )
                #expect(end.topics[0].partitions[0].offset == 20)
                #expect(
                    try values(in: try await connection.send(fetchRequest("packed", offset: 0)))
                        == (0..<20).map { "value \($0)" }
                )
                if codec == .zstd {
                    var zstd = RecordBatchBuilder(compression: .zstd)
                    zstd.append(key: nil, value: ByteBuffer(string: "new"), timestamp: 1)
                    #expect(
                        try await send(connection, "packed", try zstd.build(), version: 6).errorCode
                            == ErrorCode.unsupportedCompressionType
                    )
                }
            }
        }
    }
}
