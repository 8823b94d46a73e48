import NIOCore
import PetrelClient

/// One record of the status topic: an order's new latest status, or its deletion (a tombstone, a record
/// without a value, which compaction keeps for a while and then removes along with the order's key).
struct StatusUpdate: Sendable, Hashable {
    /// The record's key: every update of an order goes to the same partition, and compaction keeps the
    /// latest per key.
    var orderID: String
    /// Nil: the order is deleted.
    var status: LatestStatus?

    init(orderID: String, status: LatestStatus?) {
        self.orderID = orderID
        self.status = status
    }

    /// Reads a record of the status topic; a record without a key or with a value that is not a status
    /// throws.
    init(_ record: ConsumerRecord) throws {
        guard let orderID = record.keyString else { throw MalformedStatusRecord(record: record) }
        do {
            self.init(orderID: orderID, status: try record.valueString.map(LatestStatus.init(json:)))
        } catch {
            throw MalformedStatusRecord(record: record)
        }
    }

    func record(topic: String) -> ProducerRecord {
        ProducerRecord(
            topic: topic,
            key: ByteBuffer(string: orderID),
            value: status.map { ByteBuffer(string: $0.json()) }
        )
    }
}

/// A record of the status topic that is not a status update.
struct MalformedStatusRecord: Error, CustomStringConvertible {
    var record: ConsumerRecord

    var description: String {
        "the record at \(record.topicPartition)@\(record.offset) is not an order status"
    }
}
