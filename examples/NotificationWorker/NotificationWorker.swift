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
/// redelivered event causes no second notification.
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
