import NIOCore
import PetrelBrokerTestSupport
import PetrelClient
import PetrelProtocol
import Testing

/// The transaction APIs over the wire, where third-party clients do not reach: a zombie's
/// TxnOffsetCommit (KIP-447) and OffsetFetch's require_stable.
@Suite("Transaction requests")
struct TransactionRequestsTests {
    @Test("TxnOffsetCommit v3 checks the member; offsets held by a transaction are unstable until it commits")
    func offsetsWithTransactions() async throws {
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "t")
                let producer = try await connection.send(
                    InitProducerIdRequest(transactionalId: "worker", transactionTimeoutMs: 60_000)
                )
                #expect(producer.errorCode == .none)
                let (id, epoch) = (producer.producerId, producer.producerEpoch)
                let added = try await connection.send(
                    AddOffsetsToTxnRequest(
                        transactionalId: "worker",
                        producerId: id,
                        producerEpoch: epoch,
                        groupId: "g"
                    ),
                    version: 3
                )
                #expect(added.errorCode == .none)
                func commit(generation: Int32, member: String) async throws -> ErrorCode {
                    let response = try await connection.send(
                        TxnOffsetCommitRequest(
                            transactionalId: "worker",
                            groupId: "g",
                            producerId: id,
                            producerEpoch: epoch,
                            generationId: generation,
                            memberId: member,
                            topics: [.init(name: "t", partitions: [.init(partitionIndex: 0, committedOffset: 42)])]
                        ),
                        version: 3
                    )
                    return response.topics[0].partitions[0].errorCode
                }
                // A member the group does not have (a worker replaced in a rebalance) cannot commit.
                #expect(try await commit(generation: 5, member: "ghost") != .none)
                #expect(try await commit(generation: -1, member: "") == .none)

                func fetch(requireStable: Bool) async throws -> (ErrorCode, Int64) {
                    let response = try await connection.send(
                        OffsetFetchRequest(
                            groupId: "g",
                            topics: [.init(name: "t", partitionIndexes: [0])],
                            requireStable: requireStable
                        ),
                        version: 7
                    )
                    let partition = response.topics[0].partitions[0]
                    return (partition.errorCode, partition.committedOffset)
                }
                #expect(try await fetch(requireStable: true) == (.unstableOffsetCommit, -1))
                #expect(try await fetch(requireStable: false) == (.none, -1), "not committed before the transaction")
                let ended = try await connection.send(
                    EndTxnRequest(transactionalId: "worker", producerId: id, producerEpoch: epoch, committed: true),
                    version: 3
                )
                #expect(ended.errorCode == .none)
                #expect(try await fetch(requireStable: true) == (.none, 42))
            }
        }
    }
}
