import NIOCore
import PetrelBroker
import PetrelBrokerTestSupport
import PetrelClient
import PetrelProtocol
import PetrelTestSupport
import Testing

@Suite("Retention through the broker")
struct BrokerRetentionTests {
    @Test("expired records are deleted: ListOffsets earliest moves and older fetches are out of range")
    func retentionMovesLogStart() async throws {
        try await withBroker(configure: { $0.retentionCheckIntervalMs = 50 }) { _, port in
            try await withConnection(port) { connection in
                let created = try await connection.send(
                    CreateTopicsRequest(
                        topics: [
                            .init(
                                name: "short-lived",
                                numPartitions: 1,
                                replicationFactor: 1,
                                configs: [.init(name: "retention.ms", value: "60000")]
                            )
                        ]),
                    version: 5
                )
                #expect(created.topics[0].errorCode == ErrorCode.none)
                // Records stamped in 1970 are long past a one-minute retention.
                _ = try await connection.send(
                    produceRequest("short-lived", records: try batch(["a", "b", "c"], timestamp: 1_000)),
                    version: 9
                )
                let earliest = { () async throws -> Int64 in
                    let request = ListOffsetsRequest(
                        replicaId: -1,
                        topics: [.init(name: "short-lived", partitions: [.init(partitionIndex: 0, timestamp: -2)])]
                    )
                    return try await connection.send(request, version: 7).topics[0].partitions[0].offset
                }
                var start = try await earliest()
                for _ in 0..<100 where start == 0 {
                    try await Task.sleep(for: .milliseconds(50))
                    start = try await earliest()
                }
                #expect(start == 3)
                let stale = try await connection.send(fetchRequest("short-lived", offset: 0), version: 12)
                #expect(stale.responses[0].partitions[0].errorCode == ErrorCode.offsetOutOfRange)
                #expect(stale.responses[0].partitions[0].logStartOffset == 3)
                // Offsets carry on after the deleted ones.
                #expect(try await produce(connection, "short-lived", ["fresh"]).baseOffset == 3)
            }
        }
    }

    @Test("with flush=always, produce is answered after the fsync and the data reads back")
    func flushAlways() async throws {
        try await withBroker(configure: { $0.log.flushPolicy = .always }) { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "synced", partitions: 2)
                try await withThrowingTaskGroup(of: Int64.self) { group in
                    for index in 0..<20 {
                        group.addTask {
                            try await withConnection(port) { producer in
                                let answer = try await produce(
                                    producer,
                                    "synced",
                                    partition: Int32(index % 2),
                                    ["v\(index)"]
                                )
                                #expect(answer.errorCode == ErrorCode.none)
                                return answer.baseOffset
                            }
                        }
                    }
                    var offsets: [Int64] = []
                    for try await offset in group { offsets.append(offset) }
                    #expect(offsets.sorted() == (0..<10).flatMap { [Int64($0), Int64($0)] })
                }
            }
        }
    }
}
