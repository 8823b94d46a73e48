import NIOCore
import PetrelProtocol

/// A record to publish.
public struct ProducerRecord: Sendable {
    public var topic: String
    /// Nil: the partitioner chooses (by key, or sticky for records without one).
    public var partition: Int32?
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [RecordHeader]
    /// Milliseconds since the epoch; nil means when it is sent.
    public var timestamp: Int64?

    public init(
        topic: String,
        partition: Int32? = nil,
        key: ByteBuffer? = nil,
        value: ByteBuffer?,
        headers: [RecordHeader] = [],
        timestamp: Int64? = nil
    ) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
    }

    /// A record with UTF-8 key and value.
    public init(topic: String, key: String? = nil, value: String, headers: [String: String] = [:]) {
        self.init(
            topic: topic,
            key: key.map { ByteBuffer(string: $0) },
            value: ByteBuffer(string: value),
            headers: headers.sorted { $0.key < $1.key }.map {
                RecordHeader(key: $0.key, value: ByteBuffer(string: $0.value))
            }
        )
    }
}

/// Where a record was stored.
public struct RecordMetadata: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    /// -1 when it cannot be known (acks=0).
    public var offset: Int64
    public var timestamp: Int64
}

/// The outcome of a record handed to `KafkaProducer.send(_:)`, in the producer's delivery reports.
public struct DeliveryReport: Sendable {
    /// The id `send(_:)` returned for the record.
    public var id: UInt64
    public var result: Result<RecordMetadata, KafkaClientError>
}
