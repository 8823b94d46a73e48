import ArgumentParser
import Foundation
import OrderEvents
import PetrelClient
import PetrelProtocol

/// A second consumer group on the same topic: every OrderCreated is also charged here. One event,
/// two groups, each with its own committed offsets: fan-out.
@main
struct PaymentWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "payment-worker",
        abstract: "Charge every OrderCreated."
    )

    @Option(help: "Broker(s), HOST:PORT, comma-separated.") var bootstrap = "127.0.0.1:9092"
    @Option(help: "The topic.") var topic = "orders"
    @Option(help: "The consumer group.") var group = "payment-workers"
    @Option(help: "The append-only file charges go to.") var out = "payments.log"
    @Option(help: "Stop after this many seconds without a new event (0: run until stopped).") var exitWhenIdle = 0.0

    func run() async throws {
        let addresses = bootstrap.split(separator: ",").compactMap { BrokerAddress(String($0)) }
        guard !addresses.isEmpty else { throw ValidationError("--bootstrap must be HOST:PORT.") }
        var configuration = KafkaConsumerConfiguration(bootstrap: addresses, source: .group(id: group, topics: [topic]))
        configuration.clientID = "payment-worker"
        configuration.offsetReset = .earliest
        configuration.fetchMaxWait = .milliseconds(100)
        let file = try AppendOnlyFile(path: out)
        var charged = 0
        try await KafkaConsumer.withConsumer(configuration) { consumer in
            while let record = try await consumer.nextRecord(idleSeconds: exitWhenIdle) {
                guard let value = record.valueString, let event = try? OrderEvent(json: value), event.kind == .created
                else { continue }
                file.append(
                    "charged \(event.orderID) \(event.totalCents) cents for \(event.customer) (event \(event.eventID))"
                )
                charged += 1
            }
            try await consumer.commit()
        }
        FileHandle.standardError.write(Data("payment-worker: charged \(charged) orders\n".utf8))
    }
}
