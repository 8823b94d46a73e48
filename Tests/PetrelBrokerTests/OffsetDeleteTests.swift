import NIOCore
import PetrelBroker
import PetrelBrokerTestSupport
import PetrelClient
import PetrelProtocol
import PetrelTestSupport
import Testing

@Suite("OffsetDelete, DescribeLogDirs and DescribeProducers")
struct OffsetDeleteTests {
    private func commit(_ connection: KafkaConnection, group: String, _ offsets: [(String, Int32, Int64)]) async throws
    {
        let request = OffsetCommitRequest(
            groupId: group,
            generationIdOrMemberEpoch: -1,
            memberId: "",
            topics: Dictionary(grouping: offsets, by: \.0).map { topic, entries in
                .init(name: topic, partitions: entries.map { .init(partitionIndex: $0.1, committedOffset: $0.2) })
            }
        )
        _ = try await connection.send(request, version: 8)
    }

    private func deleteOffsets(
        _ connection: KafkaConnection,
        group: String,
        _ partitions: [(String, Int32)]
    ) async throws -> OffsetDeleteResponse {
        let request = OffsetDeleteRequest(
            groupId: group,
            topics: Dictionary(grouping: partitions, by: \.0).map { topic, entries in
                .init(name: topic, partitions: entries.map { .init(partitionIndex: $0.1) })
            }.sorted { $0.name < $1.name }
        )
        return try await connection.send(request)
    }

    @Test("offsets of topics no live member subscribes to are deleted; subscribed ones are refused")
    func subscriptions() async throws {
        try await withBroker(configure: { $0.groups.initialRebalanceDelayMs = 0 }) { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "orders")
                try await createTopic(connection, "archive")
                try await commit(connection, group: "workers", [("orders", 0, 5), ("archive", 0, 7)])
                // A live member subscribed to orders only.
                var metadata = ByteBuffer()
                metadata.writeInteger(Int16(1))
                ConsumerProtocolSubscription(topics: ["orders"]).write(to: &metadata, version: 1)
                let protocols = [JoinGroupRequest.JoinGroupRequestProtocol(name: "range", metadata: metadata)]
                let join = { (member: String) in
                    JoinGroupRequest(
                        groupId: "workers",
                        sessionTimeoutMs: 10_000,
                        rebalanceTimeoutMs: 10_000,
                        memberId: member,
                        protocolType: "consumer",
                        protocols: protocols
                    )
                }
                let first = try await connection.send(join(""), version: 7)
                #expect(try await connection.send(join(first.memberId), version: 7).errorCode == ErrorCode.none)

                let answer = try await deleteOffsets(connection, group: "workers", [("archive", 0), ("orders", 0)])
                #expect(answer.errorCode == ErrorCode.none)
                let codes = Dictionary(
                    uniqueKeysWithValues: answer.topics.map { ($0.name, $0.partitions[0].errorCode) }
                )
                #expect(codes["archive"] == ErrorCode.none)
                #expect(codes["orders"] == ErrorCode.groupSubscribedToTopic)
                let fetched = try await connection.send(OffsetFetchRequest(groupId: "workers", topics: nil), version: 7)
                let left = fetched.topics.flatMap { topic in topic.partitions.map { (topic.name, $0.committedOffset) } }
                #expect(left.map(\.0) == ["orders"] && left.map(\.1) == [5])

                let unknown = try await deleteOffsets(connection, group: "nobody", [("orders", 0)])
                #expect(unknown.errorCode == ErrorCode.groupIDNotFound)
            }
        }
    }

    @Test("log dirs report each partition's size; producers report their last sequence")
    func logDirsAndProducers() async throws {
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "orders", partitions: 2)
                let stored = try await produce(connection, "orders", partition: 1, ["a", "b"])
                #expect(stored.errorCode == ErrorCode.none)
                let dirs = try await connection.send(DescribeLogDirsRequest(topics: nil), version: 4)
                #expect(dirs.results.count == 1 && dirs.results[0].totalBytes > 0 && dirs.results[0].usableBytes > 0)
                let sizes = dirs.results[0].topics.first { $0.name == "orders" }?.partitions
                    .sorted { $0.partitionIndex < $1.partitionIndex }.map(\.partitionSize)
                #expect(sizes?.count == 2 && sizes?[0] == 0 && (sizes?[1] ?? 0) > 0)

                var builder = RecordBatchBuilder()
                builder.producerID = 42
                builder.producerEpoch = 0
                builder.baseSequence = 0
                for value in ["x", "y", "z"] {
                    builder.append(key: nil, value: ByteBuffer(string: value), timestamp: 1)
                }
                let idempotent = try await connection.send(produceRequest("orders", records: try builder.build()))
                #expect(idempotent.responses[0].partitionResponses[0].errorCode == ErrorCode.none)
                let producers = try await connection.send(
                    DescribeProducersRequest(topics: [.init(name: "orders", partitionIndexes: [0, 9])])
                )
                let partitions = producers.topics[0].partitions
                #expect(partitions[0].activeProducers.map(\.producerId) == [42])
                #expect(partitions[0].activeProducers.first?.lastSequence == 2)
                #expect(partitions[1].errorCode == ErrorCode.unknownTopicOrPartition)
            }
        }
    }
}
