import PetrelProtocol

/// What the log remembers of one idempotent producer on one partition: its epoch and its last five
/// batches (clients keep at most five requests in flight with idempotence, so a retry is always one of
/// them).
struct ProducerEntry: Hashable, Sendable {
    struct Batch: Hashable, Sendable {
        var firstSequence: Int32
        var lastSequence: Int32
        var firstOffset: Int64
        var lastOffset: Int64
    }

    static let retainedBatches = 5

    var epoch: Int16
    var batches: [Batch]
    /// When the broker last appended a batch of this producer (wall clock, ms), for expiring producers
    /// that went away. The broker's time rather than the records' own, so a producer replaying old
    /// data is not forgotten at once.
    var lastTimestamp: Int64
    /// The first offset of the producer's transaction still open in this partition, if any: the last
    /// stable offset cannot pass it.
    var currentTransactionFirstOffset: Int64?

    var lastSequence: Int32? { batches.last?.lastSequence }
}

/// The decision for an idempotent batch.
enum ProducerVerdict: Equatable {
    case append
    /// A retry of a batch already in the log: answer with its offsets, write nothing.
    case duplicate(firstOffset: Int64, lastOffset: Int64)
    case reject(ErrorCode, String)
}

/// The idempotent producers of one partition (Kafka's ProducerStateManager). Not thread-safe: the
/// owning `PartitionLog` calls it under its lock, so the check and the append are one step.
struct ProducerStates: Sendable {
    private(set) var entries: [Int64: ProducerEntry] = [:]

    init(entries: [Int64: ProducerEntry] = [:]) {
        self.entries = entries
    }

    func check(_ header: RecordBatchHeader) -> ProducerVerdict {
        guard header.isIdempotent else { return .append }
        // A producer this partition has not seen (or has forgotten) may start anywhere (KIP-360).
        guard let entry = entries[header.producerID] else { return .append }
        if header.producerEpoch == entry.epoch,
            let cached = entry.batches.first(where: {
                $0.firstSequence == header.baseSequence && $0.lastSequence == header.lastSequence
            })
        {
            return .duplicate(firstOffset: cached.firstOffset, lastOffset: cached.lastOffset)
        }
        if header.producerEpoch < entry.epoch {
            return .reject(
                .invalidProducerEpoch,
                "producer \(header.producerID) epoch \(header.producerEpoch) is older than the current epoch \(entry.epoch)"
            )
        }
        if header.producerEpoch > entry.epoch {
            guard header.baseSequence == 0 else {
                return .reject(
                    .outOfOrderSequenceNumber,
                    "producer \(header.producerID) started epoch \(header.producerEpoch) at sequence \(header.baseSequence), not 0"
                )
            }
            return .append
        }
        let expected = entry.lastSequence.map { $0 == Int32.max ? 0 : $0 + 1 } ?? 0
        guard header.baseSequence == expected else {
            return .reject(
                .outOfOrderSequenceNumber,
                "producer \(header.producerID) sent sequence \(header.baseSequence), expected \(expected)"
            )
        }
        return .append
    }

    /// Remembers a batch just appended (with its assigned offsets) at wall-clock time `now`. A
    /// transaction's first data batch opens it; a marker (control batch) is `completeTransaction`'s.
    mutating func record(_ header: RecordBatchHeader, now: Int64) {
        guard header.isIdempotent, !header.attributes.isControl else { return }
        var entry =
            entries[header.producerID] ?? ProducerEntry(epoch: header.producerEpoch, batches: [], lastTimestamp: -1)
        if header.producerEpoch != entry.epoch {
            entry.epoch = header.producerEpoch
            entry.batches = []
        }
        entry.batches.append(
            .init(
                firstSequence: header.baseSequence,
                lastSequence: header.lastSequence,
                firstOffset: header.baseOffset,
                lastOffset: header.lastOffset
            )
        )
        if entry.batches.count > ProducerEntry.retainedBatches { entry.batches.removeFirst() }
        entry.lastTimestamp = max(entry.lastTimestamp, now)
        if header.attributes.isTransactional, entry.currentTransactionFirstOffset == nil {
            entry.currentTransactionFirstOffset = header.baseOffset
        }
        entries[header.producerID] = entry
    }

    /// Why a marker of `producerID` at `epoch` cannot be written, or nil: an older epoch than the
    /// producer's is a fenced coordinator's.
    func markerRefusal(producerID: Int64, epoch: Int16) -> String? {
        guard let entry = entries[producerID], epoch < entry.epoch else { return nil }
        return "marker for producer \(producerID) at epoch \(epoch), older than its epoch \(entry.epoch)"
    }

    /// Ends the producer's open transaction with the marker just appended. Returns the transaction's
    /// first offset, or nil if it had none open here (a marker written again after a crash). A marker
    /// at a newer epoch (the coordinator fenced the producer) makes that epoch current, with no batches.
    mutating func completeTransaction(producerID: Int64, epoch: Int16, now: Int64) -> Int64? {
        var entry = entries[producerID] ?? ProducerEntry(epoch: epoch, batches: [], lastTimestamp: now)
        if epoch > entry.epoch {
            entry.epoch = epoch
            entry.batches = []
        }
        let first = entry.currentTransactionFirstOffset
        entry.currentTransactionFirstOffset = nil
        entry.lastTimestamp = max(entry.lastTimestamp, now)
        entries[producerID] = entry
        return first
    }

    /// The first offset of the earliest open transaction, if any.
    /// Asked by every fetch (the last stable offset), so it walks the producers without allocating.
    var firstUnstableOffset: Int64? {
        entries.values.lazy.compactMap(\.currentTransactionFirstOffset).min()
    }

    /// Forgets producers whose last batch is older than `cutoff` (Kafka's producer.id.expiration.ms).
    mutating func expire(olderThan cutoff: Int64) {
        entries = entries.filter { $0.value.lastTimestamp >= cutoff || $0.value.currentTransactionFirstOffset != nil }
    }
}
