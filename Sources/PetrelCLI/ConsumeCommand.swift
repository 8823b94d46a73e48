import ArgumentParser
import Logging
import NIOCore
import PetrelClient
import PetrelProtocol
import ServiceLifecycle

struct ConsumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consume",
        abstract: "Write a topic's records to standard output, one per line.",
        discussion: "Without --group, reads every partition of the topic. Stops after --max-messages records, or on Ctrl-C."
    )

    enum Format: String, ExpressibleByArgument, CaseIterable, Sendable {
        /// The value only, as Kafka's console consumer prints it.
        case text
        /// One JSON object per record: topic, partition, offset, timestamp, key, value, headers.
        case json
    }

    @OptionGroup var connection: BootstrapOption

    @Option(help: "The topic to read.")
    var topic: String

    @Option(help: "Read as a member of this consumer group (committing as it reads).")
    var group: String?

    @Flag(help: "Start from the oldest record (for a group: where it has no committed offset).")
    var fromBeginning = false

    @Option(help: "Stop after this many records.")
    var maxMessages: Int?

    @Option(help: "Output format: text (values) or json.")
    var format: Format = .text

    func validate() throws {
        if let maxMessages, maxMessages <= 0 { throw ValidationError("--max-messages must be at least 1.") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .error
            return handler
        }
        let bootstrap = try connection.addresses()
        let source: KafkaConsumerConfiguration.Source
        if let group {
            source = .group(id: group, topics: [topic])
        } else {
            let partitions: Int
            do {
                partitions = try await withAdmin(connection) { try await $0.describeTopic(topic).partitionCount }
            } catch {
                throw fail("cannot read topic \(topic): \(error)")
            }
            let start: KafkaConsumerConfiguration.StartOffset = fromBeginning ? .beginning : .end
            source = .partitions(Dictionary(uniqueKeysWithValues: (0..<Int32(partitions)).map { (TopicPartition(topic, $0), start) }))
        }
        var configuration = KafkaConsumerConfiguration(bootstrap: bootstrap, source: source)
        configuration.offsetReset = fromBeginning ? .earliest : .latest
        configuration.sessionTimeoutMs = 10_000
        let consumer = KafkaConsumer(configuration: configuration)
        let limit = maxMessages
        let format = self.format
        var count = 0
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                // The consumer finishing (after --max-messages) is a normal end, not a failure.
                var configuration = ServiceGroupConfiguration(
                    services: [.init(service: consumer, successTerminationBehavior: .gracefullyShutdownGroup)],
                    logger: Logger(label: "petrel.consume"))
                configuration.gracefulShutdownSignals = [.sigterm, .sigint]
                try await ServiceGroup(configuration: configuration).run()
            }
            var output = ""
            for try await record in consumer.messages {
                output += Self.render(record, format: format)
                count += 1
                if output.utf8.count > 64 * 1024 {
                    print(output, terminator: "")
                    output = ""
                }
                if let limit, count >= limit { break }
            }
            print(output, terminator: "")
            if maxMessages != nil {
                try? await consumer.commitIfGrouped()
                consumer.stop()
            }
            try await tasks.waitForAll()
        }
        writeToStandardError("consumed \(count) records from \(topic)\n")
    }

    static func render(_ record: ConsumerRecord, format: Format) -> String {
        switch format {
        case .text:
            return (record.valueString ?? "") + "\n"
        case .json:
            return JSONLine.encode([
                ("topic", .string(record.topic)),
                ("partition", .number(Int64(record.partition))),
                ("offset", .number(record.offset)),
                ("timestamp", .number(record.timestamp)),
                ("key", .string(record.keyString)),
                ("value", .string(record.valueString)),
                ("headers", .object(record.headers.map { ($0.key, .string($0.value.map { String(buffer: $0) })) })),
            ]) + "\n"
        }
    }
}

extension KafkaConsumer {
    /// Commits what was read when reading in a group (before exiting after --max-messages).
    func commitIfGrouped() async throws {
        if case .group = configuration.source { try await commit() }
    }
}
