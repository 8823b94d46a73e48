import ArgumentParser
import Logging
import PetrelClient

/// Keeps each order's latest status on a compacted topic, `order-status`, and in memory as a table. At
/// start-up it creates the topic if missing (cleanup.policy=compact), restores the table by reading the
/// topic from the beginning to its end, and prints how many orders have each status; then it follows
/// the order events in its own consumer group and publishes each order's new status, keyed by order id.
/// Compaction keeps the latest record per key, so the topic stays about as large as the table however
/// many updates it has seen, and a restart restores the table from it.
@main
struct OrderStatusService: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "order-status-service",
        abstract: "Keep each order's latest status on a compacted topic; restore the table from it at start-up."
    )

    private static let name = "order-status-service"

    @Option(help: "Broker(s), HOST:PORT, comma-separated.") var bootstrap = "127.0.0.1:9092"
    @Option(help: "The topic of order events.") var topic = "orders"
    @Option(help: "The compacted topic of each order's latest status.") var statusTopic = "order-status"
    @Option(help: "The consumer group.") var group = "order-status-service"
    @Option(
        name: .customLong("topic-config"),
        help: "A config of the status topic when this creates it, NAME=VALUE (repeatable), e.g. segment.bytes=1024."
    )
    var topicConfigs: [String] = []
    @Flag(help: "Restore the table, print it and exit: nothing is consumed or published.") var restoreOnly = false
    @Flag(help: "Print every order's line, not only the count per status.") var printTable = false
    @Flag(help: "Delete shipped orders (a tombstone) instead of recording them as shipped.") var deleteShipped = false
    @Option(help: "Commit after this many events.") var commitEvery = 10
    @Option(help: "Stop after this many seconds without a new event (0: run until stopped).") var exitWhenIdle = 0.0

    func validate() throws {
        guard commitEvery >= 1 else { throw ValidationError("--commit-every must be at least 1.") }
        for config in topicConfigs where !config.contains("=") {
            throw ValidationError("--topic-config must be NAME=VALUE, got \(config).")
        }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            // The client's own logs only when something is wrong.
            handler.logLevel = label == Self.name ? .info : .warning
            return handler
        }
        let logger = Logger(label: Self.name)
        let addresses = bootstrap.split(separator: ",").compactMap { BrokerAddress(String($0)) }
        guard !addresses.isEmpty else { throw ValidationError("--bootstrap must be HOST:PORT.") }

        let admin = KafkaAdmin(bootstrap: addresses, clientID: Self.name)
        do {
            try await StatusTopic(name: statusTopic, configs: parsedTopicConfigs())
                .createIfMissing(with: admin, logger: logger)
        } catch {
            await admin.close()
            throw error
        }
        await admin.close()

        let restored = try await restore(from: addresses, logger: logger)
        if restoreOnly { return }

        var consumer = KafkaConsumerConfiguration(bootstrap: addresses, source: .group(id: group, topics: [topic]))
        consumer.clientID = Self.name
        consumer.offsetReset = .earliest
        consumer.autoCommit = false
        consumer.sessionTimeout = .seconds(6)
        consumer.heartbeatInterval = .milliseconds(500)
        consumer.rebalanceTimeout = .seconds(10)
        consumer.fetchMaxWait = .milliseconds(100)
        var producer = KafkaProducerConfiguration(bootstrap: addresses)
        producer.clientID = Self.name
        // Each update is awaited before the next event: send it at once.
        producer.linger = .zero
        let updater = StatusUpdater(
            consumer: consumer,
            producer: producer,
            statusTopic: statusTopic,
            deletingShipped: deleteShipped,
            commitEvery: commitEvery,
            exitWhenIdle: exitWhenIdle,
            logger: logger
        )
        let table = try await updater.run(from: restored)
        show(table, heading: "\(table.count) orders in the table after the order events")
    }

    /// The table as the status topic has it: every record from the beginning up to the end offsets, the
    /// later records of an order replacing the earlier ones.
    private func restore(from addresses: [BrokerAddress], logger: Logger) async throws -> StatusTable {
        let started = ContinuousClock.now
        var table = StatusTable()
        let reader = CompactedTopicReader(bootstrap: addresses, topic: statusTopic, clientID: Self.name)
        let records = try await reader.readToEnd { record in
            do {
                table.apply(try StatusUpdate(record))
            } catch {
                logger.warning("skipped a record of the status topic", metadata: ["reason": "\(error)"])
            }
        }
        logger.info(
            "restored the table",
            metadata: ["orders": "\(table.count)", "records": "\(records)", "took": "\(ContinuousClock.now - started)"]
        )
        show(table, heading: "restored \(table.count) orders from \(records) records of \(statusTopic)")
        return table
    }

    /// Prints the count per status, and with --print-table every order's line.
    private func show(_ table: StatusTable, heading: String) {
        print(table.summary(heading))
        if printTable {
            for row in table.rows() { print(row) }
        }
    }

    private func parsedTopicConfigs() -> [String: String] {
        Dictionary(
            topicConfigs.map { config in
                let parts = config.split(separator: "=", maxSplits: 1)
                return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
            },
            uniquingKeysWith: { _, last in last }
        )
    }
}
