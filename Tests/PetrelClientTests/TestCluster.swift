import Foundation
import Logging
import NIOCore
import PetrelBroker
import PetrelBrokerTestSupport
import PetrelClient
import PetrelProtocol
import PetrelTestSupport

/// The broker the client tests run against: an in-process Petrel broker by default, or an external
/// Kafka-compatible broker named by PETREL_CLIENT_TEST_BOOTSTRAP (and PETREL_CLIENT_TEST_BROKER, its
/// name, e.g. "tansu"), which the test script starts.
enum TestCluster {
    static var externalBootstrap: BrokerAddress? {
        ProcessInfo.processInfo.environment["PETREL_CLIENT_TEST_BOOTSTRAP"].flatMap(BrokerAddress.init)
    }

    static var brokerName: String {
        externalBootstrap == nil
            ? "petrel" : ProcessInfo.processInfo.environment["PETREL_CLIENT_TEST_BROKER"] ?? "external"
    }

    static var isTansu: Bool { brokerName == "tansu" }

    /// Runs `body` with the address of a broker; an in-process one lives only for the call.
    static func with<Result: Sendable>(_ body: @Sendable (BrokerAddress) async throws -> Result) async throws -> Result
    {
        if let external = externalBootstrap { return try await body(external) }
        return try await withInProcessBroker(body)
    }

    /// Runs `body` against an in-process broker set up by `configure` (a secured listener, say).
    static func withInProcessBroker<Result: Sendable>(
        configure: (inout BrokerConfiguration) -> Void = { _ in },
        _ body: @Sendable (BrokerAddress) async throws -> Result
    ) async throws -> Result {
        try await withBroker(configure: { configuration in
            configuration.groups.initialRebalanceDelayMs = 100
            configuration.groups.minSessionTimeoutMs = 1_000
            configure(&configuration)
        }) { _, port in
            try await body(BrokerAddress(host: "127.0.0.1", port: port))
        }
    }

    /// A topic name no other test (or earlier run against a shared broker) uses.
    static func uniqueTopic(_ prefix: String) -> String {
        "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
    }

    static func producerConfiguration(_ bootstrap: BrokerAddress) -> KafkaProducerConfiguration {
        var configuration = KafkaProducerConfiguration(bootstrap: [bootstrap])
        configuration.linger = .milliseconds(2)
        configuration.deliveryTimeout = .seconds(30)
        return configuration
    }

    static func consumerConfiguration(
        _ bootstrap: BrokerAddress,
        _ source: KafkaConsumerConfiguration.Source
    ) -> KafkaConsumerConfiguration {
        var configuration = KafkaConsumerConfiguration(bootstrap: [bootstrap], source: source)
        configuration.offsetReset = .earliest
        configuration.sessionTimeout = .seconds(6)
        configuration.heartbeatInterval = .milliseconds(300)
        configuration.rebalanceTimeout = .seconds(10)
        configuration.fetchMaxWait = .milliseconds(200)
        return configuration
    }
}

/// Reads `count` records (or fails after `timeout`).
func read(_ count: Int, from consumer: KafkaConsumer, timeout: Duration = .seconds(30)) async throws -> [ConsumerRecord]
{
    try await withThrowingTaskGroup(of: [ConsumerRecord]?.self) { group in
        group.addTask {
            var records: [ConsumerRecord] = []
            for try await record in consumer.messages {
                records.append(record)
                if records.count == count { break }
            }
            return records
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        let first = try await group.next()!
        group.cancelAll()
        guard let records = first else { throw KafkaClientError.timedOut("reading \(count) records") }
        return records
    }
}

extension KafkaConsumer: Hashable {
    public static func == (lhs: KafkaConsumer, rhs: KafkaConsumer) -> Bool { lhs === rhs }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}

/// Reads from several consumers at once until `count` records arrived in total; each record comes
/// with the consumer that read it.
func readTogether(
    _ count: Int,
    from consumers: [KafkaConsumer],
    timeout: Duration = .seconds(30)
) async throws
    -> [(KafkaConsumer, ConsumerRecord)]
{
    try await withThrowingTaskGroup(of: (KafkaConsumer, ConsumerRecord)?.self) { group in
        for consumer in consumers {
            group.addTask {
                var iterator = consumer.messages.makeAsyncIterator()
                return try await iterator.next().map { (consumer, $0) }
            }
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        var seen: [(KafkaConsumer, ConsumerRecord)] = []
        while seen.count < count, let next = try await group.next() {
            guard let (consumer, record) = next else { break }  // the timer
            seen.append((consumer, record))
            group.addTask {
                var iterator = consumer.messages.makeAsyncIterator()
                return try await iterator.next().map { (consumer, $0) }
            }
        }
        group.cancelAll()
        return seen
    }
}
