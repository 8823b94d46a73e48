import NIOCore
import PetrelBroker
import PetrelBrokerTestSupport
import PetrelClient
import PetrelProtocol
import PetrelTestSupport
import Testing

@Suite("Restart")
struct RestartTests {
    @Test("every acknowledged record is still there, at the same offset, after a restart")
    func recordsSurvive() async throws {
        let data = try TemporaryDirectory()
        defer { data.remove() }
        let acknowledged: [Int64] = try await withBroker(dataDirectory: data.path) { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "durable", partitions: 2)
                var offsets: [Int64] = []
                for round in 0..<20 {
                    let answer = try await produce(
                        connection,
                        "durable",
                        partition: Int32(round % 2),
                        ["r\(round)-a", "r\(round)-b"]
                    )
                    #expect(answer.errorCode == ErrorCode.none)
                    offsets.append(answer.baseOffset)
                }
                return offsets
            }
        }
        // Rounds alternate partitions, two records each: offsets 0, 0, 2, 2, 4, 4, ...
        let expected: [Int64] = (0..<20).map { (round: Int) -> Int64 in Int64(round / 2 * 2) }
        #expect(acknowledged == expected)
        try await withBroker(dataDirectory: data.path) { _, port in
            try await withConnection(port) { connection in
                for partition: Int32 in [0, 1] {
                    let response = try await connection.send(fetchRequest("durable", partition: partition, offset: 0))
                    let records = try RecordBatchDecoder.decodeBatches(response.responses[0].partitions[0].records!)
                        .flatMap(\.records)
                    #expect(records.map(\.offset) == Array(0..<20))
                    let rounds = stride(from: Int(partition), to: 20, by: 2)
                    #expect(records.map { String(buffer: $0.value!) } == rounds.flatMap { ["r\($0)-a", "r\($0)-b"] })
                }
                // The topic id survives too.
                let id = try await connection.send(MetadataRequest(topics: [.init(name: "durable")]), version: 12)
                    .topics[0]
                    .topicId
                #expect(id != .zero)
            }
        }
    }
}
