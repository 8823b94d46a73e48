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
        discussion:
            "Without --group, reads every partition of the topic. Stops after --max-messages records, or on Ctrl-C."
    )

    enum Isolation: String, ExpressibleByArgument, CaseIterable {
        case readUncommitted = "read_uncommitted"
        case readCommitted = "read_committed"
    }

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

    @Option(help: "Read only this partition (without a group).")
    var partition: Int32?

    @Option(help: "Start at this offset (with --partition).")
    var offset: Int64?

    @Option(help: "Start at the first record at or after this time, ms since the epoch (without a group).")
    var fromTimestamp: Int64?

    @Flag(help: "With --group: read without committing offsets.")
    var noCommit = false

    @Option(help: "Stop after this many records.")
    var maxMessages: Int?

    @Option(help: "Stop once no record has arrived for this many milliseconds (counted once partitions are assigned).")
    var timeoutMs: Int?

    @Option(help: "Output format: text (values) or json.")
    var format: Format = .text

    @Option(
        help:
            "read_uncommitted (every record) or read_committed (only committed transactions' records, up to the last stable offset)."
    )
    var isolationLevel: Isolation = .readUncommitted

    func validate() throws {
        if let maxMessages, maxMessages <= 0 { throw ValidationError("--max-messages must be at least 1.") }
        if let timeoutMs, timeoutMs <= 0 { throw ValidationError("--timeout-ms must be at least 1.") }
        if group != nil && (partition != nil || offset != nil || fromTimestamp != nil) {
            throw ValidationError("--partition, --offset and --from-timestamp read without a group; drop --group.")
        }
        if offset != nil && partition == nil { throw ValidationError("--offset needs --partition.") }
        if noCommit && group == nil { throw ValidationError("--no-commit applies to --group.") }
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
                throw fail("cannot read topic \(topic): \(reason(error))")
            }
            let start: KafkaConsumerConfiguration.StartOffset =
                offset.map { .offset($0) } ?? fromTimestamp.map { .timestamp($0) }
                ?? (fromBeginning ? .beginning : .end)
            let chosen = partition.map { [$0] } ?? Array(0..<Int32(partitions))
            if let partition, partition < 0 || Int(partition) >= partitions {
                throw fail("topic \(topic) has no partition \(partition)")
            }
            source = .partitions(Dictionary(uniqueKeysWithValues: chosen.map { (TopicPartition(topic, $0), start) }))
        }
        var configuration = KafkaConsumerConfiguration(bootstrap: bootstrap, source: source)
        configuration.security = try connection.security()
        configuration.offsetReset = fromBeginning ? .earliest : .latest
        configuration.isolationLevel = isolationLevel == .readCommitted ? .readCommitted : .readUncommitted
        configuration.sessionTimeout = .seconds(10)
        configuration.autoCommit = !noCommit
        configuration.onWaitingForCluster = { failure in
            let what = failure.unreachableBroker ?? "group \(group ?? ""): \(failure)"
            writeToStandardError("petrel: waiting for \(what); retrying until stopped\n")
        }
        let consumer = KafkaConsumer(configuration: configuration)
        let limit = maxMessages
        let format = self.format
        var count = 0
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                // The consumer finishing (after --max-messages) is a normal end, not a failure.
                var configuration = ServiceGroupConfiguration(
                    services: [.init(service: consumer, successTerminationBehavior: .gracefullyShutdownGroup)],
                    logger: Logger(label: "petrel.consume")
                )
                configuration.gracefulShutdownSignals = [.sigterm, .sigint]
                try await ServiceGroup(configuration: configuration).run()
            }
            var output = ""
            var records = consumer.messages.makeAsyncIterator()
            while let record = try await next(from: consumer, &records) {
                output += Self.render(record, format: format)
                count += 1
                if count % 100_000 == 0 { writeToStandardError("... \(count) records\n") }
                if output.utf8.count > 64 * 1024 {
                    print(output, terminator: "")
                    output = ""
                }
                if let limit, count >= limit { break }
            }
            print(output, terminator: "")
            if maxMessages != nil || timeoutMs != nil {
                if !noCommit { try? await consumer.commitIfGrouped() }
                consumer.stop()
            }
            try await tasks.waitForAll()
        }
        let seconds = PerfCommand.seconds(since: started)
        writeToStandardError("consumed \(count) records from \(topic) in \(String(format: "%.2f", seconds)) s\n")
    }

    /// The next record; with --timeout-ms nil once that long passes without one.
    private func next(
        from consumer: KafkaConsumer,
        _ records: inout KafkaConsumerMessages.AsyncIterator
    ) async throws
        -> ConsumerRecord?
    {
        guard let timeoutMs else { return try await records.next() }
        // Joining a group or finding partitions takes a moment that is not idleness.
        for _ in 0..<600 where consumer.assignment.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        return try await consumer.nextRecord(timeout: .milliseconds(timeoutMs))
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
