import ArgumentParser
import Foundation
import OrderEvents
import PetrelClient
import PetrelProtocol

#if canImport(Glibc)
import Glibc
#endif

/// A consumer-group worker that "sends" one notification per order event by appending a line to a file,
/// and commits after processing. With --dedupe it skips events whose id it already notified about, so a
/// redelivered event causes no second notification. With --exactly-once TOPIC the notifications are
/// records on TOPIC instead, produced together with the consumed offsets in one transaction per batch:
/// read_committed readers of TOPIC see each event's notification exactly once, whatever the crashes.
@main
struct NotificationWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notification-worker",
        abstract: "Notify per order event; commit after processing."
    )

    @Option(help: "Broker(s), HOST:PORT, comma-separated.") var bootstrap = "127.0.0.1:9092"
    @Option(help: "The topic.") var topic = "orders"
    @Option(help: "The consumer group.") var group = "notification-workers"
    @Option(help: "The append-only file notifications go to.") var out = "notifications.log"
    @Flag(help: "Skip events already notified (by event id, from the file): idempotent processing.") var dedupe = false
    @Option(help: "Milliseconds of work per event (a slow worker builds lag).") var delayMs = 0
    @Option(help: "Commit after this many events.") var commitEvery = 10
    @Option(help: "Die (SIGKILL) after notifying this many events, before committing them.") var crashAfter: Int?
    @Option(help: "Stop after this many seconds without a new event (0: run until stopped).") var exitWhenIdle = 0.0
    @Option(help: "This worker's name in the notification lines.") var name = "worker"
    @Flag(help: "A malformed event crashes the worker (exit 70) instead of being skipped: a poison record.")
    var strict = false
    @Option(help: "Send malformed events to this topic (a dead-letter topic) and go on.") var deadLetterTopic: String?
    @Option(
        help:
            "Write notifications as records to this topic, with the consumed offsets, one transaction per --commit-every events (exactly once)."
    )
    var exactlyOnce: String?

    func run() async throws {
        let addresses = bootstrap.split(separator: ",").compactMap { BrokerAddress(String($0)) }
        guard !addresses.isEmpty else { throw ValidationError("--bootstrap must be HOST:PORT.") }
        var configuration = KafkaConsumerConfiguration(bootstrap: addresses, source: .group(id: group, topics: [topic]))
        configuration.clientID = name
        configuration.offsetReset = .earliest
        configuration.autoCommit = false
        configuration.sessionTimeout = .seconds(6)
        configuration.heartbeatInterval = .milliseconds(500)
        configuration.rebalanceTimeout = .seconds(10)
        configuration.fetchMaxWait = .milliseconds(100)
        if let exactlyOnce {
            configuration.isolationLevel = .readCommitted
            return try await notifyExactlyOnce(to: exactlyOnce, addresses: addresses, consumer: configuration)
        }
        let file = try AppendOnlyFile(path: out)
        var notified = Set(
            dedupe
                ? AppendOnlyFile.lines(of: out).compactMap {
                    $0.split(separator: " ").dropFirst().first.map(String.init)
                } : []
        )
        var handled = 0
        var skipped = 0
        var deadLettered = 0
        try await withDeadLetterProducer(addresses) { deadLetters in
            try await KafkaConsumer.withConsumer(configuration) { consumer in
                // commit() commits the offsets after the records handed out so far, all of which are processed
                // by then; partitions lost in a rebalance are left to their new owner.
                var uncommitted = 0
                while true {
                    guard let record = try await consumer.nextRecord(idleSeconds: exitWhenIdle) else { break }
                    guard let value = record.valueString, let event = try? OrderEvent(json: value) else {
                        if let deadLetters, let deadLetterTopic {
                            // Kept, with where it came from, for a person to look at; the work goes on.
                            _ = try await deadLetters.sendAndWait(
                                ProducerRecord(
                                    topic: deadLetterTopic,
                                    key: record.keyString,
                                    value: record.valueString ?? "",
                                    headers: ["source": "\(record.topicPartition)@\(record.offset)"]
                                )
                            )
                            deadLettered += 1
                        } else if strict {
                            // The crash a poison record causes: nothing after it is committed, so every restart
                            // meets it again.
                            FileHandle.standardError.write(
                                Data(
                                    "\(name): cannot parse the event at \(record.topicPartition)@\(record.offset)\n"
                                        .utf8
                                )
                            )
                            Glibc.exit(70)
                        }
                        uncommitted += 1
                        continue
                    }
                    if dedupe && notified.contains(event.eventID) {
                        skipped += 1
                    } else {
                        if delayMs > 0 { try await Task.sleep(for: .milliseconds(delayMs)) }
                        file.append(
                            "\(name) \(event.eventID) \(event.orderID) \(event.kind.rawValue) \(event.sequence) p\(record.partition)@\(record.offset)"
                        )
                        notified.insert(event.eventID)
                        handled += 1
                        if let crashAfter, handled >= crashAfter {
                            // Processed, not committed: the crash the duplicate-delivery lab is about.
                            kill(getpid(), SIGKILL)
                        }
                    }
                    uncommitted += 1
                    if uncommitted >= commitEvery {
                        try await commit(consumer)
                        uncommitted = 0
                    }
                }
                try await commit(consumer)
            }
        }
        FileHandle.standardError.write(
            Data(
                "\(name): notified \(handled) events, skipped \(skipped) already notified, \(deadLettered) to the dead-letter topic\n"
                    .utf8
            )
        )
    }

    /// The exactly-once loop: each batch of events becomes one transaction holding their notifications
    /// and the offsets after them. A crash anywhere aborts the open transaction (at the latest when the
    /// next worker with the same transactional id starts), so its events are read again and notified
    /// once, by the transaction that commits.
    private func notifyExactlyOnce(
        to outputTopic: String,
        addresses: [BrokerAddress],
        consumer configuration: KafkaConsumerConfiguration
    ) async throws {
        var producerConfiguration = KafkaProducerConfiguration(bootstrap: addresses)
        producerConfiguration.transactionalID = "\(group)-\(name)"
        producerConfiguration.transactionTimeout = .seconds(10)
        var handled = 0
        try await KafkaProducer.withProducer(producerConfiguration) { producer in
            try await producer.initTransactions()
            try await KafkaConsumer.withConsumer(configuration) { consumer in
                var positions: [TopicPartition: Int64] = [:]
                var inTransaction = 0
                func commit() async throws {
                    guard inTransaction > 0 else { return }
                    try await producer.sendOffsets(positions, group: group)
                    try await producer.commitTransaction()
                    positions = [:]
                    inTransaction = 0
                }
                while let record = try await consumer.nextRecord(idleSeconds: exitWhenIdle) {
                    if inTransaction == 0 { try producer.beginTransaction() }
                    inTransaction += 1
                    positions[record.topicPartition] = record.offset + 1
                    guard let value = record.valueString, let event = try? OrderEvent(json: value) else { continue }
                    if delayMs > 0 { try await Task.sleep(for: .milliseconds(delayMs)) }
                    try await producer.send(
                        ProducerRecord(
                            topic: outputTopic,
                            key: event.orderID,
                            value:
                                "\(name) \(event.eventID) \(event.orderID) \(event.kind.rawValue) \(event.sequence) p\(record.partition)@\(record.offset)"
                        )
                    )
                    handled += 1
                    if let crashAfter, handled >= crashAfter {
                        // Notifications written, the transaction not committed: it never becomes visible.
                        await producer.flush()
                        kill(getpid(), SIGKILL)
                    }
                    if inTransaction >= commitEvery { try await commit() }
                }
                try await commit()
            }
        }
        FileHandle.standardError.write(
            Data("\(name): notified \(handled) events exactly once to \(outputTopic)\n".utf8)
        )
    }

    /// A producer for the dead-letter topic, if there is one, for the duration of `body`.
    private func withDeadLetterProducer(
        _ addresses: [BrokerAddress],
        _ body: (KafkaProducer?) async throws -> Void
    ) async throws {
        guard deadLetterTopic != nil else { return try await body(nil) }
        try await KafkaProducer.withProducer(KafkaProducerConfiguration(bootstrap: addresses)) { try await body($0) }
    }

    private func commit(_ consumer: KafkaConsumer) async throws {
        do {
            try await consumer.commit()
        } catch let error as KafkaClientError
            where error.errorCode == .rebalanceInProgress || error.errorCode == .illegalGeneration
        {
            // A rebalance is under way: the records will be redelivered to whoever owns them next.
        }
    }
}
