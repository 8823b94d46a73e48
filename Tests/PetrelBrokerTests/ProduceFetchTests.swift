import Foundation
import NIOCore
import PetrelBroker
import PetrelBrokerTestSupport
import PetrelClient
import PetrelProtocol
import PetrelTestSupport
import Testing

@Suite("Produce, Fetch and ListOffsets")
struct ProduceFetchTests {
    @Test("produced batches get consecutive offsets and fetch back in order, at every Fetch version")
    func produceThenFetch() async throws {
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "orders", partitions: 2)
                let first = try await produce(connection, "orders", ["a", "b", "c"])
                let second = try await produce(connection, "orders", ["d"], version: 3)
                let other = try await produce(connection, "orders", partition: 1, ["x"])
                #expect(first.errorCode == ErrorCode.none && first.baseOffset == 0)
                #expect(second.errorCode == ErrorCode.none && second.baseOffset == 3)
                #expect(other.errorCode == ErrorCode.none && other.baseOffset == 0)
                for version in FetchRequest.validVersions.clamped(to: 4...12) {
                    let response = try await connection.send(fetchRequest("orders", offset: 1), version: version)
                    let partition = response.responses[0].partitions[0]
                    #expect(partition.errorCode == ErrorCode.none)
                    #expect(partition.highWatermark == 4)
                    // Whole batches: the one holding offset 1 starts at 0.
                    #expect(try values(in: response) == ["a", "b", "c", "d"], "Fetch v\(version)")
                }
            }
        }
    }

    @Test("acks=0 gets no response, and the next request's response still matches")
    func acksZero() async throws {
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "quiet")
                try await connection.sendWithoutResponse(
                    produceRequest("quiet", records: try batch(["1", "2"]), acks: 0),
                    version: 9
                )
                let answer = try await produce(connection, "quiet", ["3"])
                #expect(answer.baseOffset == 2)
            }
        }
    }

    @Test("bad produce requests get Kafka error codes per partition and write nothing")
    func produceErrors() async throws {
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "strict")
                let badAcks = try await connection.send(
                    produceRequest("strict", records: try batch(["x"]), acks: 2),
                    version: 9
                )
                #expect(badAcks.responses[0].partitionResponses[0].errorCode == ErrorCode.invalidRequiredAcks)
                let unknown = try await produce(connection, "nope", ["x"])
                #expect(unknown.errorCode == ErrorCode.unknownTopicOrPartition)
                let noPartition = try await produce(connection, "strict", partition: 5, ["x"])
                #expect(noPartition.errorCode == ErrorCode.unknownTopicOrPartition)
                var corrupt = try batch(["payload"])
                corrupt.setInteger(UInt8(0x55), at: corrupt.writerIndex - 2)
                let corrupted = try await connection.send(produceRequest("strict", records: corrupt), version: 9)
                #expect(corrupted.responses[0].partitionResponses[0].errorCode == ErrorCode.corruptMessage)
                let offsets = try await connection.send(
                    ListOffsetsRequest(
                        replicaId: -1,
                        topics: [.init(name: "strict", partitions: [.init(partitionIndex: 0, timestamp: -1)])]
                    )
                )
                #expect(offsets.topics[0].partitions[0].offset == 0)
            }
        }
    }

    @Test("a fetch with min_bytes waits for data and is woken by an append, not by polling")
    func longPoll() async throws {
        try await withBroker { _, port in
            let consumer = try await connect(port)
            let producer = try await connect(port)
            defer {
                Task {
                    await consumer.close()
                    await producer.close()
                }
            }
            try await createTopic(producer, "waiting")
            async let fetched = consumer.send(
                fetchRequest("waiting", offset: 0, maxWaitMs: 30_000, minBytes: 1),
                version: 12
            )
            try await Task.sleep(for: .milliseconds(200))
            _ = try await produce(producer, "waiting", ["late"])
            #expect(try values(in: try await fetched) == ["late"])

            // With nothing arriving, the wait ends at max_wait with an empty answer.
            let empty = try await consumer.send(
                fetchRequest("waiting", offset: 1, maxWaitMs: 100, minBytes: 1),
                version: 12
            )
            #expect(empty.responses[0].partitions[0].records?.readableBytes == 0)
            #expect(empty.responses[0].partitions[0].highWatermark == 1)
        }
    }

    @Test("fetch errors: out of range, unknown topic, and every requested partition is answered")
    func fetchErrors() async throws {
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "f", partitions: 3)
                _ = try await produce(connection, "f", ["a"])
                var request = fetchRequest("f", offset: 5)
                request.topics[0].partitions.append(.init(partition: 1, fetchOffset: 0, partitionMaxBytes: 1000))
                request.topics[0].partitions.append(.init(partition: 2, fetchOffset: 0, partitionMaxBytes: 1000))
                request.topics.append(
                    .init(topic: "missing", partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1000)])
                )
                let response = try await connection.send(request, version: 11)
                #expect(response.responses.map(\.topic) == ["f", "missing"])
                #expect(response.responses[0].partitions.map(\.partitionIndex) == [0, 1, 2])
                #expect(response.responses[0].partitions[0].errorCode == ErrorCode.offsetOutOfRange)
                #expect(response.responses[0].partitions[0].highWatermark == 1)
                #expect(response.responses[0].partitions[1].errorCode == ErrorCode.none)
                #expect(response.responses[1].partitions[0].errorCode == ErrorCode.unknownTopicOrPartition)

                var session = fetchRequest("f", offset: 0)
                session.sessionId = 77
                let refused = try await connection.send(session, version: 12)
                #expect(refused.errorCode == ErrorCode.fetchSessionIDNotFound)
            }
        }
    }

    @Test("ListOffsets: earliest, latest, by timestamp and the largest timestamp, in every version")
    func listOffsets() async throws {
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "times")
                let request = { (timestamp: Int64) in
                    ListOffsetsRequest(
                        replicaId: -1,
                        topics: [
                            .init(
                                name: "times",
                                partitions: [.init(partitionIndex: 0, timestamp: timestamp, maxNumOffsets: 1)]
                            )
                        ]
                    )
                }
                _ = try await connection.send(
                    produceRequest("times", records: try batch(["a", "b", "c"], timestamp: 1000)),
                    version: 9
                )
                _ = try await connection.send(
                    produceRequest("times", records: try batch(["d", "e"], timestamp: 5000)),
                    version: 9
                )
                _ = try await connection.send(
                    produceRequest("times", records: try batch(["f"], timestamp: 3000)),
                    version: 9
                )
                for version in ListOffsetsRequest.validVersions.clamped(to: 1...7) {
                    func offset(_ timestamp: Int64) async throws -> (Int64, Int64) {
                        let partition = try await connection.send(request(timestamp), version: version).topics[0]
                            .partitions[0]
                        #expect(partition.errorCode == ErrorCode.none)
                        return (partition.offset, partition.timestamp)
                    }
                    #expect(try await offset(-2) == (0, -1))
                    #expect(try await offset(-1) == (6, -1))
                    #expect(try await offset(1001) == (1, 1001))
                    #expect(try await offset(1003) == (3, 5000))
                    #expect(try await offset(9999) == (-1, -1))
                    if version >= 7 { #expect(try await offset(-3) == (4, 5001)) }
                }
                let v0 = try await connection.send(request(-1), version: 0)
                #expect(v0.topics[0].partitions[0].oldStyleOffsets == [6])
            }
        }
    }

    @Test("InitProducerId hands out distinct ids, and batches carrying them are accepted")
    func producerIDs() async throws {
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                let first = try await connection.send(
                    InitProducerIdRequest(transactionalId: nil, transactionTimeoutMs: 60000)
                )
                let second = try await connection.send(
                    InitProducerIdRequest(transactionalId: nil, transactionTimeoutMs: 60000),
                    version: 0
                )
                #expect(first.errorCode == ErrorCode.none && second.errorCode == ErrorCode.none)
                #expect(first.producerId != second.producerId)
                #expect(first.producerEpoch == 0)
                // A transactional id gets its own producer id from the transaction coordinator.
                let transactional = try await connection.send(
                    InitProducerIdRequest(transactionalId: "tx", transactionTimeoutMs: 60000)
                )
                #expect(transactional.errorCode == ErrorCode.none && transactional.producerEpoch == 0)
                #expect(![first.producerId, second.producerId].contains(transactional.producerId))

                try await createTopic(connection, "idem")
                var builder = RecordBatchBuilder(producerID: first.producerId, producerEpoch: 0, baseSequence: 0)
                builder.append(key: nil, value: ByteBuffer(string: "once"), timestamp: 1)
                let answer = try await connection.send(produceRequest("idem", records: try builder.build()), version: 9)
                #expect(answer.responses[0].partitionResponses[0].errorCode == ErrorCode.none)
            }
        }
    }
}
