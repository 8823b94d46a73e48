import NIOCore
import PetrelProtocol

typealias DeliveryResult = Result<RecordMetadata, KafkaClientError>

/// Who is told when a record is delivered (or fails).
enum DeliveryWaiter: Sendable {
    /// A `sendAndWait` parked on this ticket of `ProducerStateMachine.deliveries`.
    case awaiting(ParkingLot<DeliveryResult>.Ticket)
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
    /// Records of one partition not yet encoded: a batch being filled, or full and waiting its turn.
    struct PendingBatch {
        var builder: RecordBatchBuilder
        var records: [PendingRecord] = []
        var payloadBytes = 0
        var openedAt: Int64
    }

    struct PartitionQueue {
        /// Unsent batches, oldest first; only the last takes new records.
        var unsent: [PendingBatch] = []
        /// Batches that failed and wait to be sent again (before anything newer).
        var retries: [SealedBatch] = []
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
    /// Batches belong to the producer's open transaction (a transactional producer's are all).
    var isTransactional = false
    var bufferedBytes = 0
    var undelivered = 0

    init(configuration: KafkaProducerConfiguration) {
        self.configuration = configuration
    }

    /// Adds a record to its partition's open batch, opening a new one when that is full. Returns true
    /// if the sender should look now: a batch just filled up, or was opened and needs its linger timed.
    mutating func append(
        _ record: ProducerRecord,
        partition: Int32,
        timestamp: Int64,
        waiter: DeliveryWaiter,
        now: Int64
    ) -> Bool {
        let key = TopicPartition(record.topic, partition)
        let size = (record.key?.readableBytes ?? 0) + (record.value?.readableBytes ?? 0)
        bufferedBytes += size
        undelivered += 1
        // Mutated in place: a copy of the queue would copy its records and batch buffers every time.
        let configuration = self.configuration
        let (opened, full) = modifyQueue(key) { queue -> (Bool, Bool) in
            var opened = false
            if queue.unsent.last.map({ $0.builder.uncompressedBytes >= configuration.batchBytes }) ?? true {
                queue.unsent.append(
                    PendingBatch(builder: RecordBatchBuilder(compression: configuration.compression), openedAt: now)
                )
                opened = true
            }
            let last = queue.unsent.count - 1
            queue.unsent[last].builder.append(
                key: record.key,
                value: record.value,
                headers: record.headers,
                timestamp: timestamp
            )
            queue.unsent[last].records.append(PendingRecord(waiter: waiter, timestamp: timestamp))
            queue.unsent[last].payloadBytes += size
            return (opened, queue.unsent[last].builder.uncompressedBytes >= configuration.batchBytes)
        }
        if full, record.partition == nil, record.key == nil { sticky[record.topic] = nil }
        return opened || full
    }

    private mutating func modifyQueue<Result>(
        _ key: TopicPartition,
        _ body: (inout PartitionQueue) throws -> Result
    ) rethrows -> Result {
        if queues[key] == nil { queues[key] = PartitionQueue() }
        return try body(&queues[key]!)
    }

    /// Takes the batches to send now: per partition not in flight, a batch waiting for a retry whose
    /// backoff is over, or else its oldest unsent batch if that one is full, has lingered long enough,
    /// or must go now (`force`: a flush or shutdown). Also returns when the next batch will be ready.
    mutating func drainReady(now: Int64, force: Bool) throws -> (batches: [SealedBatch], nextDeadline: Int64?) {
        var ready: [SealedBatch] = []
        var nextDeadline: Int64?
        func consider(_ deadline: Int64) { nextDeadline = min(nextDeadline ?? deadline, deadline) }
        let configuration = self.configuration
        let (producerID, producerEpoch) = (self.producerID, self.producerEpoch)
        let idempotent = configuration.idempotence && producerID >= 0
        let isTransactional = self.isTransactional
        for key in Array(queues.keys) {
            try modifyQueue(key) { queue in
                guard !queue.inFlight else { return }
                if let retry = queue.retries.first {
                    if queue.retryAt <= now {
                        ready.append(retry)
                        queue.retries.removeFirst()
                        queue.inFlight = true
                    } else {
                        consider(queue.retryAt)
                    }
                    return
                }
                guard let oldest = queue.unsent.first else { return }
                let lingerEnds = oldest.openedAt + configuration.linger.inMilliseconds
                let complete = queue.unsent.count > 1 || oldest.builder.uncompressedBytes >= configuration.batchBytes
                guard force || complete || now >= lingerEnds else {
                    consider(lingerEnds)
                    return
                }
                var batch = queue.unsent.removeFirst()
                if idempotent {
                    batch.builder.producerID = producerID
                    batch.builder.producerEpoch = producerEpoch
                    batch.builder.baseSequence = queue.nextSequence
                    batch.builder.isTransactional = isTransactional
                    let next = Int64(queue.nextSequence) + Int64(batch.builder.recordCount)
                    queue.nextSequence = Int32(truncatingIfNeeded: next % (Int64(Int32.max) + 1))
                }
                ready.append(
                    SealedBatch(
                        partition: key,
                        bytes: try batch.builder.build(),
                        records: batch.records,
                        payloadBytes: batch.payloadBytes,
                        deadline: batch.openedAt + configuration.deliveryTimeout.inMilliseconds
                    )
                )
                queue.inFlight = true
            }
            if ready.last?.partition == key, sticky[key.topic] == key.partition { sticky[key.topic] = nil }
        }
        return (ready, nextDeadline)
    }

    /// A batch came back for another try (after `backoff` ms).
    mutating func requeue(_ batch: SealedBatch, now: Int64, backoff: Int64) {
        var batch = batch
        batch.attempts += 1
        queues[batch.partition]?.retries.insert(batch, at: 0)
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

    /// Takes every record not in flight out of the producer (it is stopping for good).
    mutating func removeQueued() -> [PendingRecord] {
        var removed: [PendingRecord] = []
        var removedBytes = 0
        for key in Array(queues.keys) {
            modifyQueue(key) { queue in
                for batch in queue.unsent {
                    removed += batch.records
                    removedBytes += batch.payloadBytes
                }
                for batch in queue.retries {
                    removed += batch.records
                    removedBytes += batch.payloadBytes
                }
                queue.unsent = []
                queue.retries = []
            }
        }
        bufferedBytes -= removedBytes
        undelivered -= removed.count
        return removed
    }

    var isEmpty: Bool { undelivered == 0 }
}
