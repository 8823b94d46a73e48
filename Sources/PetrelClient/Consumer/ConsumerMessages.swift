import PetrelProtocol

/// The records a `KafkaConsumer` reads, in order per partition.
public struct KafkaConsumerMessages: AsyncSequence, Sendable {
    public typealias Element = ConsumerRecord
    let machine: LockedStateMachine<ConsumerStateMachine>

    public struct AsyncIterator: AsyncIteratorProtocol {
        let machine: LockedStateMachine<ConsumerStateMachine>

        public mutating func next() async throws -> ConsumerRecord? {
            try await machine.nextRecord(timeout: nil)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(machine: machine)
    }
}

/// The two waits on the record buffer: the reader for a record, the fetcher for room.
extension LockedStateMachine where State == ConsumerStateMachine {
    /// The next record, waiting at most `timeout` (nil: as long as it takes); nil once the consumer
    /// finished or the time is up. A record is either returned or left in the buffer, never lost to a
    /// timeout. A cancelled wait throws CancellationError.
    func nextRecord(timeout: Duration?) async throws -> ConsumerRecord? {
        let deadline = timeout.map { ContinuousClock.now + $0 }
        while true {
            if Task.isCancelled { throw CancellationError() }
            let (taken, wakeups) = withLock { $0.takeRecord() }
            wakeups.resume()
            if let taken { return try taken.get() }
            switch await park(\.readers, until: deadline, unless: { $0.hasRecordOrEnd ? () : nil }) {
            case .resumed: continue
            case .cancelled: throw CancellationError()
            case .timedOut: return nil
            }
        }
    }

    /// Buffers a partition's fetched records and moves its position, waiting while the buffer is full.
    /// False if they were dropped: fetched under an ended epoch, the consumer finished, or the fetcher
    /// was cancelled.
    func push(
        _ records: [ConsumerRecord],
        of partition: TopicPartition,
        from: Int64,
        next: Int64,
        epoch: UInt64
    ) async
        -> Bool
    {
        while true {
            switch withLock({ $0.push(records, of: partition, from: from, next: next, epoch: epoch) }) {
            case .accepted(let wakeups):
                wakeups.resume()
                return true
            case .dropped:
                return false
            case .full:
                let outcome = await park(\.writers) { $0.canPush(epoch: epoch) ? () : nil }
                if case .cancelled = outcome { return false }
            }
        }
    }
}
