import NIOCore
import PetrelProtocol

/// Transactions, partition side: markers end a producer's transaction here, the last stable offset
/// stops at the earliest one still open, and aborted transactions are looked up for read_committed
/// fetches.
extension PartitionLog {
    /// A marker of an epoch older than its producer's (from a coordinator that was fenced).
    public struct MarkerRefused: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Appends a commit or abort marker for `producerID`'s transaction and returns its offset. An abort
    /// gets an entry in the active segment's aborted-transaction index. A marker for a producer with
    /// no transaction open here (written again after a crash) is appended and changes nothing else.
    @discardableResult
    public func appendMarker(
        _ marker: ControlRecord,
        producerID: Int64,
        producerEpoch: Int16,
        now: Int64
    ) throws -> Int64 {
        try state.withLock { state in
            guard !state.isClosed else { throw StorageError("append", path: directory, reason: "the log is closed") }
            if let refusal = state.producers.markerRefusal(producerID: producerID, epoch: producerEpoch) {
                throw MarkerRefused(description: refusal)
            }
            let batch = marker.batch(producerID: producerID, producerEpoch: producerEpoch, timestamp: now)
            var header = RecordBatchHeader(peekingAt: batch.readerIndex, in: batch)!
            if shouldRoll(state, incoming: header, now: now) { try roll(&state) }
            header.baseOffset = state.logEndOffset
            header.partitionLeaderEpoch = Self.leaderEpoch
            let active = state.active
            do {
                try active.append(batch: batch, header: header, now: now)
            } catch {
                try? active.log.truncate(to: active.size)
                throw error
            }
            let first = state.producers.completeTransaction(producerID: producerID, epoch: producerEpoch, now: now)
            if marker.kind == .abort, let first {
                let entry = AbortedTransaction(
                    producerID: producerID,
                    firstOffset: first,
                    lastOffset: header.baseOffset,
                    lastStableOffset: Self.lastStableOffset(state)
                )
                try TransactionIndex.append([entry], directory: directory, baseOffset: active.baseOffset)
                active.hasTransactionIndex = true
                state.abortedTransactions.append(entry)
            }
            return header.baseOffset
        }
    }

    /// The first offset of the earliest transaction still open, or the log end: read_committed
    /// consumers read only below it.
    public var lastStableOffset: Int64 { state.withLock { Self.lastStableOffset($0) } }

    static func lastStableOffset(_ state: State) -> Int64 {
        // Records DeleteRecords or retention removed are gone whatever their transaction: never below the start.
        max(state.producers.firstUnstableOffset ?? state.logEndOffset, state.logStartOffset)
    }

    /// The aborted transactions with data in `[from, to)`: those whose marker is at or after `from` and
    /// whose first offset is before `to`. A binary search for the first marker, then a walk that stops
    /// at an entry whose last stable offset was already past `to` (every later transaction began after
    /// it), as Kafka's lookup does.
    static func abortedTransactions(_ state: State, from: Int64, to: Int64) -> [AbortedTransaction] {
        let all = state.abortedTransactions
        var low = 0
        var high = all.count
        while low < high {
            let middle = (low + high) / 2
            if all[middle].lastOffset < from { low = middle + 1 } else { high = middle }
        }
        var found: [AbortedTransaction] = []
        for entry in all[low...] {
            if entry.firstOffset < to { found.append(entry) }
            if entry.lastStableOffset > to { break }
        }
        return found
    }

    /// The aborted transactions the partition knows, oldest marker first (tests and tools).
    public var abortedTransactions: [AbortedTransaction] { state.withLock { $0.abortedTransactions } }
}
