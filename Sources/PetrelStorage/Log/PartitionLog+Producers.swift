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

    /// Rebuilds the producers after the segments are loaded (and, after a crash, recovered).
    static func loadProducers(segments: [LogSegment], directory: String, logger: Logger) throws -> ProducerStates {
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
                    states.record(header, now: now)
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
        return states
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
                    lastTimestamp: entry.lastTimestamp
                )
            }
            .sorted { $0.producerID < $1.producerID }
        }
    }
}
