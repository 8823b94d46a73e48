import Logging
import OrderEvents
import PetrelClient
import PetrelProtocol

/// Follows the order events as a member of a consumer group and keeps the table and the status topic
/// up to date: an event that moves an order forward is published to the status topic, keyed by order id,
/// and applied to the table. The group's offsets are committed only once the updates the events led to
/// are stored, so after a crash the events since the last commit come again and the restored table tells
/// which of them are already applied.
struct StatusUpdater: Sendable {
    var consumer: KafkaConsumerConfiguration
    var producer: KafkaProducerConfiguration
    var statusTopic: String
    /// Tombstone orders once they ship, instead of recording them as shipped.
    var deletingShipped: Bool
    var commitEvery: Int
    /// Stop after this many seconds without an event (0: run until stopped).
    var exitWhenIdle: Double
    var logger: Logger

    /// Runs until idle (or stopped); returns the table as it is then.
    func run(from restored: StatusTable) async throws -> StatusTable {
        try await KafkaProducer.withProducer(producer) { producer in
            try await KafkaConsumer.withConsumer(consumer) { consumer in
                var table = restored
                var events = 0
                var published = 0
                var uncommitted = 0
                while let record = try await consumer.nextRecord(idleSeconds: exitWhenIdle) {
                    events += 1
                    uncommitted += 1
                    if let update = update(for: record, in: table) {
                        // Stored before it counts: the table and the commit follow the topic, never lead it.
                        _ = try await producer.sendAndWait(update.record(topic: statusTopic))
                        table.apply(update)
                        published += 1
                    }
                    if uncommitted >= commitEvery {
                        try await commit(consumer)
                        uncommitted = 0
                    }
                }
                try await commit(consumer)
                logger.info(
                    "order events applied",
                    metadata: ["events": "\(events)", "updates": "\(published)", "orders": "\(table.count)"]
                )
                return table
            }
        }
    }

    /// The update a record of the order topic calls for, if any. A record that is not an order event is
    /// skipped.
    private func update(for record: ConsumerRecord, in table: StatusTable) -> StatusUpdate? {
        guard let value = record.valueString, let event = try? OrderEvent(json: value) else {
            logger.warning(
                "skipped a record that is not an order event",
                metadata: ["at": "\(record.topicPartition)@\(record.offset)"]
            )
            return nil
        }
        return table.update(for: event, at: record.timestamp, deletingShipped: deletingShipped)
    }

    private func commit(_ consumer: KafkaConsumer) async throws {
        do {
            try await consumer.commit()
        } catch let error as KafkaClientError
            where error.errorCode == .rebalanceInProgress || error.errorCode == .illegalGeneration
        {
            // A rebalance is under way: the events since the last commit come again to whoever reads
            // them next.
        }
    }
}
