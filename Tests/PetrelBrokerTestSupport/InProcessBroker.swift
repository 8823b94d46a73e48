import Logging
import PetrelBroker
import PetrelClient
import PetrelTestSupport

/// Runs an in-process broker on a free loopback port (in `dataDirectory`, or a temporary folder removed
/// afterwards) for the duration of `body`, then shuts it down.
public func withBroker<Result: Sendable>(
    dataDirectory: String? = nil,
    configure: (inout BrokerConfiguration) -> Void = { _ in },
    _ body: @Sendable (_ broker: Broker, _ port: Int) async throws -> Result
) async throws -> Result {
    let temporary = dataDirectory == nil ? try TemporaryDirectory() : nil
    defer { temporary?.remove() }
    var configuration = BrokerConfiguration()
    configuration.port = 0
    configuration.dataDirectory = dataDirectory ?? temporary!.path
    configure(&configuration)
    var logger = Logger(label: "petrel.test.broker")
    logger.logLevel = .warning
    let broker = try Broker(configuration: configuration, logger: logger)
    return try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask {
            try await broker.run()
            return nil
        }
        let port = try await broker.listeningAddress().port!
        let result = try await body(broker, port)
        group.cancelAll()
        while let next = try await group.next() { _ = next }
        return result
    }
}

/// A Kafka connection to the broker on `port` for the duration of `body`, closed afterwards (and
/// awaited), also when `body` throws. Without `negotiateVersions` it skips the ApiVersions exchange.
public func withConnection<Result: Sendable>(
    _ port: Int,
    negotiateVersions: Bool = true,
    _ body: (KafkaConnection) async throws -> Result
) async throws -> Result {
    let connection = try await KafkaConnection.connect(
        host: "127.0.0.1",
        port: port,
        clientID: "petrel-tests",
        negotiateVersions: negotiateVersions
    )
    do {
        let result = try await body(connection)
        await connection.close()
        return result
    } catch {
        await connection.close()
        throw error
    }
}
