import NIOCore
import PetrelProtocol

/// Who is told when a record is delivered (or fails).
enum DeliveryWaiter: Sendable {
    case awaiting(CheckedContinuation<RecordMetadata, any Error>)
    case report(UInt64)
}

/// One record's place in a batch: its waiter and its timestamp (for the metadata handed back).
struct PendingRecord: Sendable {
    var waiter: DeliveryWaiter
    var timestamp: Int64
}

/// A batch on its way to the broker, already encoded (so a retry resends the very same bytes, with
/// the same producer sequence, and the broker can recognise it).
struct SealedBatch: Sendable {
    var partition: TopicPartition
    var bytes: ByteBuffer
    var records: [PendingRecord]
    /// Bytes of keys and values, for the producer's buffer accounting.
    var payloadBytes: Int
    var deadline: Int64
    var attempts = 0
}

/// Records waiting to be sent, batched per partition. Each partition has at most one batch in flight,
/// so retries never reorder it. Not thread-safe: `KafkaProducer` holds it under a lock.
struct RecordAccumulator {
    struct PartitionQueue {
        var builder: RecordBatchBuilder?
        var records: [PendingRecord] = []
        var payloadBytes = 0
        var openedAt: Int64 = 0
        var sealed: [SealedBatch] = []
        var inFlight = false
        var retryAt: Int64 = 0
        /// The idempotent producer's next sequence number on this partition.
        var nextSequence: Int32 = 0
    }

    let configuration: KafkaProducerConfiguration
    var queues: [TopicPartition: PartitionQueue] = [:]
    /// The partition a topic's keyless records currently stick to.
    var sticky: [String: Int32] = [:]
    var producerID: Int64 = -1
    var producerEpoch: Int16 = -1
    var bufferedBytes = 0
    var undelivered = 0

    init(configuration: KafkaProducerConfiguration) {
        self.configuration = configuration
    }

    /// Adds a record to its partition's open batch. Returns true if that batch is now full (the
    /// sender should look at once) or newly opened (the sender must time its linger).
    mutating func append(_ record: ProducerRecord, partition: Int32, timestamp: Int64, waiter: DeliveryWaiter, now: Int64) -> Bool {
        let key = TopicPartition(record.topic, partition)
        var queue = queues[key] ?? PartitionQueue()
        let opened = queue.builder == nil
        if opened {
            queue.builder = RecordBatchBuilder(compression: configuration.compression)
            queue.openedAt = now
        }
        queue.builder!.append(key: record.key, value: record.value, headers: record.headers, timestamp: timestamp)
        queue.records.append(PendingRecord(waiter: waiter, timestamp: timestamp))
        let size = (record.key?.readableBytes ?? 0) + (record.value?.readableBytes ?? 0)
        queue.payloadBytes += size
        bufferedBytes += size
        undelivered += 1
        let full = queue.builder!.uncompressedBytes >= configuration.batchBytes
        queues[key] = queue
        if full, record.partition == nil, record.key == nil { sticky[record.topic] = nil }
        return opened || full
    }

    /// Takes the batches to send now: per partition not in flight, a batch waiting for a retry whose
    /// backoff is over, or else an open batch that is full, has lingered long enough, or must go now
    /// (`force`: a flush or shutdown). Also returns when the next batch will be ready.
    mutating func drainReady(now: Int64, force: Bool) throws -> (batches: [SealedBatch], nextDeadline: Int64?) {
        var ready: [SealedBatch] = []
        var nextDeadline: Int64?
        func consider(_ deadline: Int64) { nextDeadline = min(nextDeadline ?? deadline, deadline) }
        let idempotent = configuration.idempotence && producerID >= 0
        for key in Array(queues.keys) {
            var queue = queues[key]!
            guard !queue.inFlight else { continue }
            if let retry = queue.sealed.first {
                if queue.retryAt <= now {
                    ready.append(retry)
                    queue.sealed.removeFirst()
                    queue.inFlight = true
                } else {
                    consider(queue.retryAt)
                }
            } else if var builder = queue.builder {
                let lingerEnds = queue.openedAt + configuration.lingerMs
                if force || now >= lingerEnds || builder.uncompressedBytes >= configuration.batchBytes {
                    if idempotent {
                        builder.producerID = producerID
                        builder.producerEpoch = producerEpoch
                        builder.baseSequence = queue.nextSequence
                        let next = Int64(queue.nextSequence) + Int64(builder.recordCount)
                        queue.nextSequence = Int32(truncatingIfNeeded: next % (Int64(Int32.max) + 1))
                    }
                    let bytes = try builder.build()
                    ready.append(
                        SealedBatch(
                            partition: key, bytes: bytes, records: queue.records, payloadBytes: queue.payloadBytes,
                            deadline: queue.openedAt + configuration.deliveryTimeoutMs))
                    queue.builder = nil
                    queue.records = []
                    queue.payloadBytes = 0
                    queue.inFlight = true
                    if sticky[key.topic] == key.partition { sticky[key.topic] = nil }
                } else {
                    consider(lingerEnds)
                }
            }
            queues[key] = queue
        }
        return (ready, nextDeadline)
    }

    /// A batch came back for another try (after `backoff` ms).
    mutating func requeue(_ batch: SealedBatch, now: Int64, backoff: Int64) {
        var batch = batch
        batch.attempts += 1
        queues[batch.partition]?.sealed.insert(batch, at: 0)
        queues[batch.partition]?.retryAt = now + backoff
        queues[batch.partition]?.inFlight = false
    }

    /// A batch is done (delivered or failed for good).
    mutating func finish(_ batch: SealedBatch) {
        queues[batch.partition]?.inFlight = false
        bufferedBytes -= batch.payloadBytes
        undelivered -= batch.records.count
        // Idle queues stay: they carry the partition's next producer sequence.
    }

    var isEmpty: Bool { undelivered == 0 }
}
