import NIOCore
import PetrelBroker
import PetrelBrokerTestSupport
import PetrelClient
import PetrelProtocol
import PetrelTestSupport
import Testing

/// The limits that keep one client, or many, from taking the broker's memory or sockets.
@Suite("Connection limits")
struct ConnectionLimitsTests {
    @Test("a frame longer than max-request-bytes closes the connection on its length prefix alone")
    func oversizedFrame() async throws {
        try await withBroker(configure: { $0.maxRequestBytes = 4096 }) { _, port in
            let socket = try await RawSocket(port: port)
            // Only the length: the broker must refuse before waiting for (or allocating) the body.
            try await socket.send([0, 0, 0x10, 0x01])
            #expect(await socket.isClosedByPeer())
            await socket.close()
            // A frame within the limit is still served.
            let connection = try await connect(port)
            #expect(try await connection.send(ApiVersionsRequest()).errorCode == ErrorCode.none)
            await connection.close()
        }
    }

    @Test("an array count far beyond the frame's bytes is refused without allocating it")
    func hugeArrayCountInTinyFrame() async throws {
        // Metadata v12 (flexible): topics is a compact array whose count is a varint; claim 2^31 - 2.
        var body: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0x07]
        body += [1, 0, 0]  // allow auto-creation, include authorized operations, no tagged fields
        let frame = HostileInputTests.frame(apiKey: APIKey.metadata.rawValue, version: 12, body: body)
        #expect(frame.count < 64)
        try await withBroker { broker, port in
            let socket = try await RawSocket(port: port)
            try await socket.send(frame)
            #expect(await socket.isClosedByPeer())
            await socket.close()
            #expect(
                broker.renderMetrics().contains(
                    #"petrel_request_errors_total{api="Metadata",error="CONNECTION_CLOSED"} 1"#
                )
            )
            let connection = try await connect(port)
            #expect(try await connection.send(ApiVersionsRequest()).errorCode == ErrorCode.none)
            await connection.close()
        }
    }

    @Test("connections beyond max-connections are closed as they arrive; a freed slot is usable again")
    func tooManyConnections() async throws {
        try await withBroker(configure: { $0.maxConnections = 3 }) { broker, port in
            var open: [KafkaConnection] = []
            for _ in 0..<3 {
                let connection = try await connect(port)
                #expect(try await connection.send(ApiVersionsRequest()).errorCode == ErrorCode.none)
                open.append(connection)
            }
            let extra = try await RawSocket(port: port)
            #expect(await extra.isClosedByPeer())
            await extra.close()
            #expect(broker.renderMetrics().contains("petrel_connections_rejected_total 1"))

            await open.removeFirst().close()
            // The broker notices the close asynchronously; a new connection gets in once it has.
            var admitted = false
            for _ in 0..<50 where !admitted {
                if let connection = try? await connect(port),
                    (try? await connection.send(ApiVersionsRequest()).errorCode) == ErrorCode.none
                {
                    admitted = true
                    open.append(connection)
                } else {
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            #expect(admitted)
            for connection in open { await connection.close() }
        }
    }

    @Test("the broker closes a connection that stays quiet past connections.max.idle.ms")
    func idleTimeoutWiring() async throws {
        // Only that the handler is in the broker's pipeline: the timing cases run on a virtual clock in
        // IdleConnectionTests. A quiet socket cannot be mistaken for a busy one, so the wait is generous.
        try await withBroker(configure: { $0.connectionsMaxIdleMs = 200 }) { broker, port in
            let idle = try await RawSocket(port: port)
            #expect(await idle.isClosedByPeer(within: .seconds(20)))
            await idle.close()
            #expect(broker.renderMetrics().contains("petrel_connections_idle_closed_total 1"))
        }
    }
}
