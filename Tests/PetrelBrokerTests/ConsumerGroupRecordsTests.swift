import NIOCore
import PetrelBrokerTestSupport
import PetrelClient
import PetrelProtocol
import Testing

@testable import PetrelBroker

@Suite("Consumer-protocol groups in __consumer_offsets")
struct ConsumerGroupRecordsTests {
    @Test("a member's join and leave are Kafka's records: group epoch, member metadata, assignment, then tombstones")
    func joinAndLeave() async throws {
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "orders", partitions: 2)
                let joined = try await connection.send(
                    ConsumerGroupHeartbeatRequest(
                        groupId: "shipping",
                        memberEpoch: 0,
                        rebalanceTimeoutMs: 30_000,
                        subscribedTopicNames: ["orders"],
                        topicPartitions: []
                    ),
                    version: 0
                )
                #expect(joined.errorCode == .none && joined.memberEpoch == 1)
                let member = try #require(joined.memberId)
                let left = try await connection.send(
                    ConsumerGroupHeartbeatRequest(groupId: "shipping", memberId: member, memberEpoch: -1),
                    version: 0
                )
                #expect(left.errorCode == .none)

                let records = try await offsetsTopicRecords(connection, group: "shipping")
                let keys = records.map { record in
                    var key = record.key!
                    let version: Int16 = try! key.readKafkaInteger()
                    let group = try! key.readKafkaString(flexible: false)
                    let memberID = version == 3 ? nil : try! key.readKafkaString(flexible: false)
                    return (version, group, memberID, record.value.map { Array(buffer: $0) })
                }
                #expect(keys.allSatisfy { $0.1 == "shipping" })
                // Joining: the group epoch (1), the member's metadata and its assignment.
                #expect(keys.prefix(3).map(\.0) == [3, 5, 8])
                #expect(keys[0].3 == [0, 0, 0, 0, 0, 1, 0])  // version 0, epoch 1, no tagged fields
                #expect(keys[1].2 == member && keys[2].2 == member)
                // Leaving: the group epoch moves on, and the member's records become tombstones.
                let leaving = keys.dropFirst(3)
                #expect(leaving.filter { $0.0 == 3 }.map(\.3) == [[0, 0, 0, 0, 0, 2, 0]])
                #expect(leaving.filter { $0.0 != 3 }.map(\.0).sorted() == [5, 8])
                #expect(leaving.filter { $0.0 != 3 }.allSatisfy { $0.3 == nil && $0.2 == member })
            }
        }
    }

    @Test("a member whose session expires leaves the group epoch's next record and its tombstones")
    func sessionExpiry() async throws {
        try await withBroker(configure: {
            $0.groups.consumerSessionTimeoutMs = 300
            $0.groups.consumerHeartbeatIntervalMs = 100
        }) { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "orders")
                let joined = try await connection.send(
                    ConsumerGroupHeartbeatRequest(
                        groupId: "expiring",
                        memberEpoch: 0,
                        rebalanceTimeoutMs: 30_000,
                        subscribedTopicNames: ["orders"],
                        topicPartitions: []
                    ),
                    version: 0
                )
                let member = try #require(joined.memberId)
                // No more heartbeats: the coordinator's timer removes the member after 300 ms.
                var tombstones: [Int16] = []
                for _ in 0..<50 where tombstones.count < 2 {
                    try await Task.sleep(for: .milliseconds(100))
                    tombstones = try await offsetsTopicRecords(connection, group: "expiring").compactMap { record in
                        guard record.value == nil, var key = record.key else { return nil }
                        let version: Int16 = try key.readKafkaInteger()
                        _ = try key.readKafkaString(flexible: false)
                        return try key.readKafkaString(flexible: false) == member ? version : nil
                    }
                }
                #expect(tombstones.sorted() == [5, 8])
                let epochs = try await offsetsTopicRecords(connection, group: "expiring").compactMap { record in
                    var key = record.key!
                    return try key.readKafkaInteger(as: Int16.self) == 3 ? record.value.map { Array(buffer: $0) } : nil
                }
                #expect(epochs == [[0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 2, 0]])
            }
        }
    }
}
