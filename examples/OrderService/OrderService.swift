import ArgumentParser
import Foundation
import NIOCore
import OrderEvents
import PetrelClient
import PetrelProtocol
import Synchronization

/// Publishes order events: for each order, OrderCreated then (optionally) OrderPaid and OrderShipped,
/// as JSON keyed by order id with an `event-id` header, at a configurable rate.
@main
struct OrderService: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "order-service",
        abstract: "Publish OrderCreated (and OrderPaid, OrderShipped) events."
    )

    @Option(help: "Broker(s), HOST:PORT, comma-separated.") var bootstrap = "127.0.0.1:9092"
    @Option(help: "The topic.") var topic = "orders"
    @Option(help: "How many orders (0: until stopped).") var orders = 100
    @Option(help: "Events per order: 1 (created), 2 (+ paid) or 3 (+ shipped).") var eventsPerOrder = 1
    @Option(help: "Events per second (0: as fast as possible).") var rate = 0.0
    @Option(help: "The first order number (to run several services side by side).") var firstOrder = 1
    @Flag(help: "Publish without keys, so one order's events may land in different partitions.") var unkeyed = false
    @Option(help: "Append the event id and offset of every acknowledged event to this file.") var ackedLog: String?

    func validate() throws {
        guard (1...3).contains(eventsPerOrder) else { throw ValidationError("--events-per-order must be 1, 2 or 3.") }
        guard rate >= 0, orders >= 0 else { throw ValidationError("--rate and --orders cannot be negative.") }
    }

    func run() async throws {
        let addresses = bootstrap.split(separator: ",").compactMap { BrokerAddress(String($0)) }
        guard !addresses.isEmpty else { throw ValidationError("--bootstrap must be HOST:PORT.") }
        var configuration = KafkaProducerConfiguration(bootstrap: addresses)
        configuration.clientID = "order-service"
        let log = try ackedLog.map { try AppendOnlyFile(path: $0) }
        let kinds: [OrderEvent.Kind] = [.created, .paid, .shipped]
        let interval = rate > 0 ? Duration.seconds(1.0 / rate) : nil
        var published = 0
        var failed = 0
        let started = ContinuousClock.now
        try await KafkaProducer.withProducer(configuration) { producer in
            let acknowledged = AcknowledgementLog(file: log)
            let reports = Task {
                var failures = 0
                for await report in producer.deliveryReports {
                    switch report.result {
                    case .success(let stored):
                        acknowledged.delivered(report.id, partition: stored.partition, offset: stored.offset)
                    case .failure: failures += 1
                    }
                }
                return failures
            }
            var order = firstOrder
            while orders == 0 || order < firstOrder + orders {
                let orderID = "order-\(order)"
                for (index, kind) in kinds.prefix(eventsPerOrder).enumerated() {
                    let event = OrderEvent(
                        eventID: UUID().uuidString.lowercased(),
                        kind: kind,
                        orderID: orderID,
                        customer: "customer-\(order % 13)",
                        sequence: index + 1,
                        totalCents: 1_000 + order % 9_000
                    )
                    let record = ProducerRecord(
                        topic: topic,
                        key: unkeyed ? nil : ByteBuffer(string: orderID),
                        value: ByteBuffer(string: event.json()),
                        headers: [
                            RecordHeader(key: "event-id", value: ByteBuffer(string: event.eventID)),
                            RecordHeader(key: "event-type", value: ByteBuffer(string: kind.rawValue)),
                        ]
                    )
                    let id = try await producer.send(record)
                    acknowledged.sent(id, eventID: event.eventID)
                    published += 1
                    if let interval { try await Task.sleep(for: interval) }
                }
                order += 1
            }
            await producer.flush()
            await producer.shutDown()
            failed = await reports.value
        }
        let seconds = ContinuousClock.now - started
        FileHandle.standardError.write(
            Data("order-service: published \(published) events (\(failed) failed) in \(seconds)\n".utf8)
        )
        if failed > 0 { throw ExitCode.failure }
    }
}

/// Writes "event-id partition offset" for each acknowledged event. A delivery report may arrive before
/// `send` has returned its id, so either side may come first.
final class AcknowledgementLog: Sendable {
    private let file: AppendOnlyFile?
    private let state = Mutex<(events: [UInt64: String], early: [UInt64: (Int32, Int64)])>(([:], [:]))

    init(file: AppendOnlyFile?) {
        self.file = file
    }

    func sent(_ id: UInt64, eventID: String) {
        let early = state.withLock { state -> (Int32, Int64)? in
            if let stored = state.early.removeValue(forKey: id) { return stored }
            state.events[id] = eventID
            return nil
        }
        if let (partition, offset) = early { file?.append("\(eventID) \(partition) \(offset)") }
    }

    func delivered(_ id: UInt64, partition: Int32, offset: Int64) {
        let eventID = state.withLock { state -> String? in
            if let eventID = state.events.removeValue(forKey: id) { return eventID }
            state.early[id] = (partition, offset)
            return nil
        }
        if let eventID { file?.append("\(eventID) \(partition) \(offset)") }
    }
}
