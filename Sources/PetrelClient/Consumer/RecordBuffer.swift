import NIOCore
import PetrelProtocol

/// Records fetched and not yet handed to the reader, with backpressure: the fetcher waits while the
/// buffer is full. Every push carries the assignment epoch it was fetched under; a push from an older
/// epoch (before a rebalance or a seek) is dropped, so stale records never reach the reader. It also
/// remembers, per partition, the offset after the last record handed out: what a commit commits.
final class RecordBuffer: Sendable {
    private struct State {
        var records = CircularBuffer<ConsumerRecord>()
        var epoch: UInt64 = 0
        var finished = false
        var failure: (any Error)?
        /// Per partition, the offset after the last record handed to the reader.
        var consumed: [TopicPartition: Int64] = [:]
        /// Readers waiting for a record, fetchers waiting for room.
        var readers = ParkingLot<Void>()
        var writers = ParkingLot<Void>()
    }

    private let capacity: Int
    private let machine = LockedStateMachine(State())

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Adds records fetched under `epoch`, waiting while the buffer is full. Returns false if they were
    /// dropped because the epoch has moved on, the buffer finished, or the fetcher was cancelled.
    func push(_ records: [ConsumerRecord], epoch: UInt64) async -> Bool {
        guard !records.isEmpty else { return true }
        let capacity = self.capacity
        while true {
            enum Step {
                case delivered(Wakeups<Void>)
                case dropped
                case full
            }
            let step = machine.withLock { state -> Step in
                if state.finished || epoch != state.epoch { return .dropped }
                if state.records.count >= capacity { return .full }
                state.records.append(contentsOf: records)
                return .delivered(state.readers.resumeAll())
            }
            switch step {
            case .dropped:
                return false
            case .delivered(let wakeups):
                wakeups.resume()
                return true
            case .full:
                let outcome = await machine.park(\.writers) { state in
                    state.finished || state.records.count < capacity || epoch != state.epoch ? () : nil
                }
                if case .cancelled = outcome { return false }
            }
        }
    }

    /// The next record, waiting at most `timeout` (nil: as long as it takes); nil once the buffer is
    /// finished or the time is up. A record is either returned or left in the buffer, never lost to a
    /// timeout. A cancelled wait throws CancellationError.
    func next(timeout: Duration? = nil) async throws -> ConsumerRecord? {
        let deadline = timeout.map { ContinuousClock.now + $0 }
        let capacity = self.capacity
        while true {
            if Task.isCancelled { throw CancellationError() }
            let (taken, wakeups) = machine.withLock { state -> (Result<ConsumerRecord?, any Error>?, Wakeups<Void>) in
                if let record = state.records.popFirst() {
                    state.consumed[record.topicPartition] = record.offset + 1
                    return (.success(record), state.records.count < capacity ? state.writers.resumeAll() : Wakeups())
                }
                if state.finished { return (state.failure.map { .failure($0) } ?? .success(nil), Wakeups()) }
                return (nil, Wakeups())
            }
            wakeups.resume()
            if let taken { return try taken.get() }
            let outcome = await machine.park(\.readers, until: deadline) { state in
                !state.records.isEmpty || state.finished ? () : nil
            }
            switch outcome {
            case .resumed: continue
            case .cancelled: throw CancellationError()
            case .timedOut: return nil
            }
        }
    }

    /// Starts a new epoch: drops the buffered records of partitions for which `keep` is false (revoked or
    /// sought), and everything still being fetched under the old epoch. Returns the new epoch.
    @discardableResult
    func newEpoch(keeping keep: (TopicPartition) -> Bool) -> UInt64 {
        let (epoch, wakeups) = machine.withLock { state -> (UInt64, Wakeups<Void>) in
            state.epoch += 1
            let kept = state.records.filter { keep($0.topicPartition) }
            state.records = CircularBuffer(kept)
            return (state.epoch, state.writers.resumeAll())
        }
        wakeups.resume()
        return epoch
    }

    var epoch: UInt64 { machine.withLock { $0.epoch } }

    /// Where the reader has got to, per partition.
    var consumedPositions: [TopicPartition: Int64] { machine.withLock { $0.consumed } }

    func forget(_ partitions: Set<TopicPartition>) {
        machine.withLock { state in for partition in partitions { state.consumed[partition] = nil } }
    }

    /// Ends the sequence: the reader gets what is buffered, then nil (or `error`).
    func finish(error: (any Error)? = nil) {
        machine.withLock { state -> Wakeups<Void> in
            state.finished = true
            state.failure = error
            var wakeups = state.readers.resumeAll()
            wakeups.append(state.writers.resumeAll())
            return wakeups
        }.resume()
    }
}

/// The records a `KafkaConsumer` reads, in order per partition.
public struct KafkaConsumerMessages: AsyncSequence, Sendable {
    public typealias Element = ConsumerRecord
    let buffer: RecordBuffer

    public struct AsyncIterator: AsyncIteratorProtocol {
        let buffer: RecordBuffer

        public mutating func next() async throws -> ConsumerRecord? {
            try await buffer.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(buffer: buffer)
    }
}
