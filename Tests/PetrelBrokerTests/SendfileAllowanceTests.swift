import NIOCore
import PetrelBrokerTestSupport
import PetrelClient
import PetrelProtocol
import Testing

@testable import PetrelBroker

@Suite("Sendfile allowance")
struct SendfileAllowanceTests {
    @Test("grants while descriptors are left, and takes them back when the last reference to a grant goes")
    func grants() {
        let allowance = SendfileAllowance(capacity: 3)
        var first: SendfileGrant? = allowance.grant(2)
        #expect(first != nil && allowance.held == 2)
        #expect(allowance.grant(2) == nil)
        #expect(allowance.held == 2)
        var second: SendfileGrant? = allowance.grant(1)
        #expect(second != nil && allowance.held == 3)
        first = nil
        #expect(allowance.held == 1)
        second = nil
        #expect(allowance.held == 0)
        #expect(allowance.grant(4) == nil)
    }

    @Test("a fetch with more partitions than the allowance is read into memory: the same records, and counted")
    func fallsBackToMemory() async throws {
        try await withBroker(configure: { $0.maxSendfileDescriptors = 2 }) { broker, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "orders", partitions: 3)
                for partition in Int32(0)..<3 {
                    _ = try await produce(
                        connection,
                        "orders",
                        partition: partition,
                        ["p\(partition)-a", "p\(partition)-b"]
                    )
                }
                let all = FetchRequest(
                    maxWaitMs: 0,
                    minBytes: 0,
                    maxBytes: 1 << 20,
                    sessionEpoch: -1,
                    topics: [
                        .init(
                            topic: "orders",
                            partitions: (Int32(0)..<3).map {
                                .init(partition: $0, fetchOffset: 0, partitionMaxBytes: 1 << 20)
                            }
                        )
                    ]
                )
                let three = try await connection.send(all, version: 12)
                #expect(
                    try values(in: three).sorted() == ["p0-a", "p0-b", "p1-a", "p1-b", "p2-a", "p2-b"]
                )
                #expect(sampleValue(broker.renderMetrics(), "petrel_fetch_read_into_memory_total") == 1)

                // Two partitions fit: sent with sendfile, and the descriptors come back once written.
                let one = try await connection.send(fetchRequest("orders", partition: 1, offset: 0), version: 12)
                #expect(try values(in: one) == ["p1-a", "p1-b"])
                #expect(sampleValue(broker.renderMetrics(), "petrel_fetch_read_into_memory_total") == 1)
                #expect(broker.state.sendfileAllowance.held == 0)
            }
        }
    }
}
