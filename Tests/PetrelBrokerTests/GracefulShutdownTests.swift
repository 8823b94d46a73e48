import Foundation
import Logging
import NIOCore
import PetrelBroker
import PetrelBrokerTestSupport
import PetrelClient
import PetrelProtocol
import PetrelTestSupport
import ServiceLifecycle
import Testing

@Suite("Graceful shutdown")
struct GracefulShutdownTests {
    @Test("graceful shutdown answers the request in flight, closes idle connections, and leaves a clean log")
    func drainsThenClosesCleanly() async throws {
        let data = try TemporaryDirectory()
        defer { data.remove() }
        var configuration = BrokerConfiguration()
        configuration.port = 0
        configuration.dataDirectory = data.path
        configuration.metricsEndpoint = MetricsEndpointConfiguration(port: 0)
        var logger = Logger(label: "petrel.test.shutdown")
        logger.logLevel = .warning
        let broker = try Broker(configuration: configuration, logger: logger)
        let services = ServiceGroup(configuration: .init(services: [broker], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await services.run() }
            let port = try await broker.listeningAddress().port!
            let metricsPort = try await broker.metricsAddress().port!
            let busy = try await connect(port)
            let idle = try await connect(port)
            try await createTopic(busy, "orders")
            #expect(try await produce(busy, "orders", ["kept"]).errorCode == ErrorCode.none)
            _ = try await idle.send(MetadataRequest(topics: []), version: 12)

            // A long poll for data that never comes is in flight when the shutdown begins.
            let started = ContinuousClock.now
            let parked = Task {
                try await busy.send(fetchRequest("orders", offset: 1, maxWaitMs: 20_000, minBytes: 1), version: 12)
            }
            try await Task.sleep(for: .milliseconds(200))
            await services.triggerGracefulShutdown()

            // It is answered (empty, without error) at once, not cut off and not after its 20 s wait.
            let answer = try await parked.value
            #expect(answer.responses.first?.partitions.first?.errorCode == ErrorCode.none)
            #expect(answer.responses.first?.partitions.first?.highWatermark == 1)
            #expect(ContinuousClock.now - started < .seconds(10))
            try await group.next()
            #expect(!broker.isReady)
            // Both connections are closed and the metrics endpoint is gone.
            await #expect(throws: (any Error).self) {
                _ = try await idle.send(MetadataRequest(topics: []), version: 12)
            }
            await #expect(throws: (any Error).self) { _ = try await httpGet(port: metricsPort, path: "/health") }
            await busy.close()
            await idle.close()
        }
        #expect(FileManager.default.fileExists(atPath: data.path + "/.clean-shutdown"))

        // The next start trusts the clean shutdown: no recovery scan, every record there.
        try await withBroker(dataDirectory: data.path) { broker, port in
            #expect(broker.startedAfterCleanShutdown)
            try await withConnection(port) { (connection: KafkaConnection) async throws in
                #expect(try await fetchAllValues(connection, "orders") == ["kept"])
            }
        }
    }
}
