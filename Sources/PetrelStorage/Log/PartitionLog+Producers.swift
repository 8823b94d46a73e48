import Logging
import PetrelProtocol

/// Idempotent-producer state across restarts: the newest valid snapshot, then the batches after it.
extension PartitionLog {
    /// How long a producer that sends nothing is remembered (Kafka's producer.id.expiration.ms).
    static let producerExpirationMs: Int64 = 24 * 3_600_000

    /// Snapshots the producers at the log end, forgetting the ones long gone. Called under the lock.
    func writeProducerSnapshot(_ state: inout State, now: Int64) throws {
        state.producers.expire(olderThan: now - Self.producerExpirationMs)
        try ProducerSnapshot.write(state.producers, offset: state.logEndOffset, directory: directory)
        ProducerSnapshot.prune(directory: directory, logEndOffset: state.logEndOffset)
    }

    /// Rebuilds the producers after the segments are loaded (and, after a crash, recovered), and with
    /// them the aborted transactions whose markers follow the snapshot: an entry missing from a
    /// segment's `.txnindex` (lost with a crash) is written again.
    static func loadProducers(
        segments: [LogSegment],
        directory: String,
        aborted known: [AbortedTransaction],
        logger: Logger
    ) throws -> (ProducerStates, [AbortedTransaction]) {
        var aborted = known
        let end = segments[segments.count - 1].nextOffset
        ProducerSnapshot.prune(directory: directory, logEndOffset: end)
        var states = ProducerStates()
        var from = segments[0].baseOffset
        for offset in ProducerSnapshot.offsets(in: directory) where offset <= end && offset >= from {
            if let snapshot = ProducerSnapshot.read(offset: offset, directory: directory) {
                states = snapshot
                from = offset
                break
            }
            logger.warning("ignoring an unreadable producer snapshot", metadata: ["offset": "\(offset)"])
        }
        // Replay the batch headers after the snapshot: 61 bytes a batch, no records. When they were
        // appended is not recorded; counting them as appended now only keeps them a little longer.
        let now = wallClockMillis()
        var replayed = 0
        for segment in segments where segment.nextOffset > from {
            var position = 0
            while position < segment.size, let header = try segment.readHeader(at: position) {
                if header.baseOffset >= from, header.isIdempotent {
                    if header.attributes.isControl {
                        let body = try segment.reader.read(
                            position: position + RecordBatchHeader.size,
                            length: header.totalSize - RecordBatchHeader.size
                        )
                        if let marker = ControlRecord.read(body: body) {
                            let entry = replayMarker(marker, header: header, states: &states, now: now)
                            if let entry, !aborted.contains(entry) {
                                aborted.append(entry)
                                try TransactionIndex.append(
                                    [entry],
                                    directory: directory,
                                    baseOffset: segment.baseOffset
                                )
                                segment.hasTransactionIndex = true
                            }
                        }
                    } else {
                        states.record(header, now: now)
                    }
                    replayed += 1
                }
                position += header.totalSize
            }
        }
        if replayed > 0 || !states.entries.isEmpty {
            logger.debug(
                "restored producer state",
                metadata: ["producers": "\(states.entries.count)", "replayedBatches": "\(replayed)"]
            )
        }
        return (states, aborted.sorted { $0.lastOffset < $1.lastOffset })
    }

    /// A marker met while replaying: ends its producer's transaction; an abort's index entry.
    private static func replayMarker(
        _ marker: ControlRecord,
        header: RecordBatchHeader,
        states: inout ProducerStates,
        now: Int64
    ) -> AbortedTransaction? {
        let first = states.completeTransaction(producerID: header.producerID, epoch: header.producerEpoch, now: now)
        guard marker.kind == .abort, let first else { return nil }
        return AbortedTransaction(
            producerID: header.producerID,
            firstOffset: first,
            lastOffset: header.baseOffset,
            lastStableOffset: states.firstUnstableOffset ?? header.nextOffset
        )
    }
}

/// An idempotent producer as the partition knows it (DescribeProducers).
public struct ActiveProducer: Sendable, Hashable {
    public var producerID: Int64
    public var epoch: Int16
    /// The last sequence number stored, -1 if none.
    public var lastSequence: Int32
    /// The newest timestamp of its last batch (ms since the epoch).
    public var lastTimestamp: Int64
    /// The first offset of its transaction open in the partition, -1 if none.
    public var currentTransactionStartOffset: Int64 = -1
}

extension PartitionLog {
    /// The idempotent producers whose recent batches this partition remembers, by producer id.
    public var activeProducers: [ActiveProducer] {
        state.withLock { state in
            state.producers.entries.map { id, entry in
                ActiveProducer(
                    producerID: id,
                    epoch: entry.epoch,
                    lastSequence: entry.lastSequence ?? -1,
                    lastTimestamp: entry.lastTimestamp,
                    currentTransactionStartOffset: entry.currentTransactionFirstOffset ?? -1
                )
            }
            .sorted { $0.producerID < $1.producerID }
        }
    }
}
