import NIOCore
import PetrelBrokerTestSupport
import PetrelClient
import PetrelProtocol
import PetrelTestSupport
import Testing

@testable import PetrelBroker

@Suite("Committed offsets and group admin")
struct GroupOffsetsTests {
    func commit(
        _ connection: KafkaConnection,
        group: String,
        topic: String,
        offsets: [Int32: Int64],
        generation: Int32 = -1,
        member: String = ""
    )
        async throws -> [ErrorCode]
    {
        let request = OffsetCommitRequest(
            groupId: group,
            generationIdOrMemberEpoch: generation,
            memberId: member,
            topics: [
                .init(
                    name: topic,
                    partitions: offsets.sorted { $0.key < $1.key }.map {
                        .init(partitionIndex: $0.key, committedOffset: $0.value, committedMetadata: "m\($0.value)")
                    }
                )
            ]
        )
        return try await connection.send(request, version: 8).topics.flatMap(\.partitions).map(\.errorCode)
    }

    func fetch(_ connection: KafkaConnection, group: String, topic: String, partitions: [Int32]) async throws -> [Int64]
    {
        let response = try await connection.send(
            OffsetFetchRequest(groupId: group, topics: [.init(name: topic, partitionIndexes: partitions)]),
            version: 7
        )
        return response.topics.flatMap(\.partitions).map(\.committedOffset)
    }

    @Test("offsets committed from outside a group survive a restart; a deleted topic takes its offsets along")
    func durableOffsets() async throws {
        let data = try TemporaryDirectory()
        defer { data.remove() }
        try await withBroker(dataDirectory: data.path) { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "kept", partitions: 2)
                try await createTopic(connection, "doomed")
                #expect(
                    try await commit(connection, group: "admins", topic: "kept", offsets: [0: 5, 1: 7]) == [
                        .none, .none,
                    ]
                )
                #expect(try await commit(connection, group: "admins", topic: "doomed", offsets: [0: 3]) == [.none])
                #expect(
                    try await commit(connection, group: "admins", topic: "nope", offsets: [0: 3]) == [
                        ErrorCode.unknownTopicOrPartition
                    ]
                )
                #expect(
                    try await fetch(connection, group: "admins", topic: "kept", partitions: [0, 1, 2]) == [5, 7, -1]
                )
            }
        }
        try await withBroker(dataDirectory: data.path) { _, port in
            try await withConnection(port) { connection in
                #expect(try await fetch(connection, group: "admins", topic: "kept", partitions: [0, 1]) == [5, 7])
                let all = try await connection.send(OffsetFetchRequest(groupId: "admins", topics: nil), version: 7)
                #expect(Set(all.topics.map(\.name)) == ["kept", "doomed"])
                #expect(all.topics.first { $0.name == "kept" }?.partitions.first?.metadata == "m5")

                _ = try await connection.send(DeleteTopicsRequest(topicNames: ["doomed"], timeoutMs: 1000), version: 4)
                try await createTopic(connection, "doomed")
                #expect(try await fetch(connection, group: "admins", topic: "doomed", partitions: [0]) == [-1])
                let listed = try await connection.send(ListGroupsRequest(), version: 5)
                #expect(listed.groups.map(\.groupId) == ["admins"])
                #expect(listed.groups.first?.groupState == "Empty")
            }
        }
    }

    @Test("DeleteGroups removes an empty group's offsets; unknown groups get GROUP_ID_NOT_FOUND")
    func deleteGroups() async throws {
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "t")
                _ = try await commit(connection, group: "old", topic: "t", offsets: [0: 1])
                let response = try await connection.send(
                    DeleteGroupsRequest(groupsNames: ["old", "never"]),
                    version: 2
                )
                #expect(response.results.map(\.errorCode) == [.none, ErrorCode.groupIDNotFound])
                #expect(try await fetch(connection, group: "old", topic: "t", partitions: [0]) == [-1])
                let described = try await connection.send(DescribeGroupsRequest(groups: ["old"]), version: 5)
                #expect(described.groups.first?.groupState == "Dead")
            }
        }
    }

    @Test("a full membership round over the wire: join, sync, heartbeat, commit, leave")
    func membershipRound() async throws {
        try await withBroker(configure: { $0.groups.initialRebalanceDelayMs = 0 }) { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "work")
                let protocols = [
                    JoinGroupRequest.JoinGroupRequestProtocol(name: "range", metadata: ByteBuffer(string: "sub"))
                ]
                let first = try await connection.send(
                    JoinGroupRequest(
                        groupId: "crew",
                        sessionTimeoutMs: 10_000,
                        rebalanceTimeoutMs: 10_000,
                        memberId: "",
                        protocolType: "consumer",
                        protocols: protocols
                    ),
                    version: 7
                )
                #expect(first.errorCode == ErrorCode.memberIDRequired)
                let joined = try await connection.send(
                    JoinGroupRequest(
                        groupId: "crew",
                        sessionTimeoutMs: 10_000,
                        rebalanceTimeoutMs: 10_000,
                        memberId: first.memberId,
                        protocolType: "consumer",
                        protocols: protocols
                    ),
                    version: 7
                )
                #expect(
                    joined.errorCode == ErrorCode.none && joined.generationId == 1 && joined.leader == first.memberId
                )
                #expect(joined.protocolType == "consumer" && joined.protocolName == "range")
                let synced = try await connection.send(
                    SyncGroupRequest(
                        groupId: "crew",
                        generationId: 1,
                        memberId: first.memberId,
                        protocolType: "consumer",
                        protocolName: "range",
                        assignments: [.init(memberId: first.memberId, assignment: ByteBuffer(string: "everything"))]
                    ),
                    version: 5
                )
                #expect(synced.errorCode == ErrorCode.none && synced.assignment == ByteBuffer(string: "everything"))
                let beat = try await connection.send(
                    HeartbeatRequest(groupId: "crew", generationId: 1, memberId: first.memberId),
                    version: 4
                )
                #expect(beat.errorCode == ErrorCode.none)
                #expect(
                    try await commit(
                        connection,
                        group: "crew",
                        topic: "work",
                        offsets: [0: 9],
                        generation: 1,
                        member: first.memberId
                    ) == [.none]
                )
                #expect(
                    try await commit(connection, group: "crew", topic: "work", offsets: [0: 9]) == [
                        ErrorCode.unknownMemberID
                    ]
                )
                #expect(
                    try await commit(
                        connection,
                        group: "crew",
                        topic: "work",
                        offsets: [0: 9],
                        generation: 5,
                        member: first.memberId
                    ) == [ErrorCode.illegalGeneration]
                )
                let described = try await connection.send(DescribeGroupsRequest(groups: ["crew"]), version: 5).groups[0]
                #expect(described.groupState == "Stable" && described.protocolData == "range")
                #expect(described.members.map(\.memberId) == [first.memberId])
                #expect(described.members.first?.clientHost == "/127.0.0.1")
                #expect(described.members.first?.memberAssignment == ByteBuffer(string: "everything"))
                let left = try await connection.send(
                    LeaveGroupRequest(groupId: "crew", members: [.init(memberId: first.memberId)]),
                    version: 5
                )
                #expect(left.errorCode == ErrorCode.none && left.members.map(\.errorCode) == [.none])
                #expect(
                    try await connection.send(DescribeGroupsRequest(groups: ["crew"]), version: 5).groups[0].groupState
                        == "Empty"
                )
                // __consumer_offsets holds the group as Kafka records it: Stable with its assignment, then Empty.
                let records = try await offsetsTopicRecords(connection, group: "crew")
                let groups = try records.compactMap { record -> OffsetsTopicRecord.GroupMetadata? in
                    var key = record.key!
                    guard case .groupMetadata("crew") = try OffsetsTopicRecord.decodeKey(&key) else { return nil }
                    var value = record.value!
                    return try OffsetsTopicRecord.decodeGroupMetadataValue(&value)
                }
                #expect(groups.map(\.generation) == [1, 2])
                #expect(groups.first?.protocolName == "range" && groups.first?.leader == first.memberId)
                #expect(groups.first?.members.map(\.assignment) == [Array("everything".utf8)])
                #expect(groups.first?.members.map(\.subscription) == [Array("sub".utf8)])
                #expect(groups.last?.members.isEmpty == true && groups.last?.protocolName == nil)
                let coordinator = try await connection.send(FindCoordinatorRequest(key: "crew", keyType: 0), version: 3)
                #expect(coordinator.errorCode == ErrorCode.none && coordinator.port == Int32(port))
                // The broker is every transactional id's coordinator too; other key types are refused.
                let transactional = try await connection.send(FindCoordinatorRequest(key: "tx", keyType: 1), version: 3)
                #expect(transactional.errorCode == ErrorCode.none && transactional.port == Int32(port))
                let unknown = try await connection.send(FindCoordinatorRequest(key: "x", keyType: 2), version: 3)
                #expect(unknown.errorCode == ErrorCode.invalidRequest)
            }
        }
    }
}
