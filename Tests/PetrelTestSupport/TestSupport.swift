import Foundation
import Logging
import PetrelBroker

/// A fresh folder under the system's temporary directory, removed by `remove()`.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

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
