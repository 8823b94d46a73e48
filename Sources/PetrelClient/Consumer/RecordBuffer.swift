import NIOCore
import PetrelProtocol
import Synchronization

/// Records fetched and not yet handed to the reader, with backpressure: the fetcher waits while the
/// buffer is full. Every push carries the assignment epoch it was fetched under; a push from an older
/// epoch (before a rebalance or a seek) is dropped, so stale records never reach the reader. It also
/// remembers, per partition, the offset after the last record handed out: what a commit commits.
final class RecordBuffer: Sendable {
    private struct State {
        var records = CircularBuffer<ConsumerRecord>()
        var epoch: UInt64 = 0
        var reader: CheckedContinuation<ConsumerRecord?, any Error>?
        /// Which wait the parked reader is, so a stale timeout cannot end a later wait.
        var readerWait: UInt64 = 0
        var writers: [CheckedContinuation<Void, Never>] = []
        var finished = false
        var failure: (any Error)?
        /// Per partition, the offset after the last record handed to the reader.
        var consumed: [TopicPartition: Int64] = [:]
    }

    private let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Adds records fetched under `epoch`, waiting while the buffer is full. Returns false if they were
    /// dropped because the epoch has moved on (or the buffer finished).
    func push(_ records: [ConsumerRecord], epoch: UInt64) async -> Bool {
        guard !records.isEmpty else { return true }
        while true {
            enum Step {
                case delivered(CheckedContinuation<ConsumerRecord?, any Error>?, ConsumerRecord?)
                case dropped
                case full
            }
            let step = state.withLock { state -> Step in
                if state.finished || epoch != state.epoch { return .dropped }
                if state.records.count >= capacity { return .full }
                state.records.append(contentsOf: records)
                guard let reader = state.reader else { return .delivered(nil, nil) }
                state.reader = nil
                let first = state.records.removeFirst()
                state.consumed[first.topicPartition] = first.offset + 1
                return .delivered(reader, first)
            }
            switch step {
            case .dropped: return false
            case .delivered(let reader, let record):
                reader?.resume(returning: record)
                return true
            case .full:
                await withCheckedContinuation { continuation in
                    let roomNow = state.withLock { state -> Bool in
                        if state.finished || state.records.count < capacity || epoch != state.epoch { return true }
                        state.writers.append(continuation)
                        return false
                    }
                    if roomNow { continuation.resume() }
                }
            }
        }
    }

    /// The next record, waiting at most `timeout` (nil: as long as it takes); nil once the buffer is
    /// finished or the time is up. A record is either returned or left in the buffer, never lost to a
    /// timeout. A cancelled wait throws CancellationError.
    func next(timeout: TimeAmount? = nil, eventLoop: (any EventLoop)? = nil) async throws -> ConsumerRecord? {
        try await withTaskCancellationHandler {
            try await waitForNext(timeout: timeout, eventLoop: eventLoop)
        } onCancel: {
            let reader = state.withLock { state in
                defer { state.reader = nil }
                return state.reader
            }
            reader?.resume(throwing: CancellationError())
        }
    }

    private func waitForNext(timeout: TimeAmount?, eventLoop: (any EventLoop)?) async throws -> ConsumerRecord? {
        if Task.isCancelled { throw CancellationError() }
        return try await withCheckedThrowingContinuation { continuation in
            var parkedAs: UInt64?
            let (record, end, writers) = state.withLock { state -> (ConsumerRecord?, Result<Void, any Error>?, [CheckedContinuation<Void, Never>]) in
                if let record = state.records.popFirst() {
                    state.consumed[record.topicPartition] = record.offset + 1
                    let writers = state.records.count < capacity ? state.writers : []
                    if !writers.isEmpty { state.writers = [] }
                    return (record, nil, writers)
                }
                if state.finished { return (nil, state.failure.map { .failure($0) } ?? .success(()), []) }
                // Checked under the lock, so a cancellation cannot slip between this and parking.
                if Task.isCancelled { return (nil, .failure(CancellationError()), []) }
                state.reader = continuation
                state.readerWait += 1
                parkedAs = state.readerWait
                let writers = state.writers
                state.writers = []
                return (nil, nil, writers)
            }
            writers.forEach { $0.resume() }
            if let record {
                continuation.resume(returning: record)
            } else if let end {
                switch end {
                case .success: continuation.resume(returning: nil)
                case .failure(let error): continuation.resume(throwing: error)
                }
            } else if let timeout, let eventLoop, let wait = parkedAs {
                eventLoop.scheduleTask(in: timeout) {
                    // Only if that same wait is still parked: a record that arrived first stays delivered.
                    let expired = self.state.withLock { state -> CheckedContinuation<ConsumerRecord?, any Error>? in
                        guard state.readerWait == wait, let reader = state.reader else { return nil }
                        state.reader = nil
                        return reader
                    }
                    expired?.resume(returning: nil)
                }
            }
        }
    }

    /// Starts a new epoch: drops the buffered records of partitions for which `keep` is false (revoked or
    /// sought), and everything still being fetched under the old epoch. Returns the new epoch.
    @discardableResult
    func newEpoch(keeping keep: (TopicPartition) -> Bool) -> UInt64 {
        let (epoch, writers) = state.withLock { state -> (UInt64, [CheckedContinuation<Void, Never>]) in
            state.epoch += 1
            let kept = state.records.filter { keep($0.topicPartition) }
            state.records = CircularBuffer(kept)
            let writers = state.writers
            state.writers = []
            return (state.epoch, writers)
        }
        writers.forEach { $0.resume() }
        return epoch
    }

    var epoch: UInt64 { state.withLock { $0.epoch } }

    /// Where the reader has got to, per partition.
    var consumedPositions: [TopicPartition: Int64] { state.withLock { $0.consumed } }

    func forget(_ partitions: Set<TopicPartition>) {
        state.withLock { state in for partition in partitions { state.consumed[partition] = nil } }
    }

    /// Ends the sequence: the reader gets what is buffered, then nil (or `error`).
    func finish(error: (any Error)? = nil) {
        let (reader, writers) = state.withLock { state -> (CheckedContinuation<ConsumerRecord?, any Error>?, [CheckedContinuation<Void, Never>]) in
            state.finished = true
            state.failure = error
            defer { state.reader = nil; state.writers = [] }
            return (state.records.isEmpty ? state.reader : nil, state.writers)
        }
        if let reader {
            if let error { reader.resume(throwing: error) } else { reader.resume(returning: nil) }
        }
        writers.forEach { $0.resume() }
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
