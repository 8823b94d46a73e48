import NIOCore
import PetrelProtocol

/// All of a `KafkaConsumer`'s mutable state: its assignment and positions, its group membership, the
/// records fetched and not yet read, and the tasks waiting on it (the reader, the fetcher, a fetcher
/// waiting for room, `run()` waiting for a stop). Events go in as methods; tasks to wake come out, to be
/// resumed once the lock is released. Not thread-safe: `KafkaConsumer` holds it in a
/// `LockedStateMachine`.
///
/// Records carry the assignment epoch they were fetched under: a rebalance or a seek starts a new epoch,
/// and records fetched under an older one are dropped, so stale records never reach the reader.
struct ConsumerStateMachine {
    /// Assigned partitions and the next offset to fetch from each.
    var positions: [TopicPartition: Int64] = [:]
    var paused: Set<TopicPartition> = []
    var memberID = ""
    var generation: Int32 = -1
    var coordinator: Int32?
    /// With the consumer group protocol (KIP-848): the membership, in place of `memberID` and `generation`.
    var membership: ConsumerProtocolMembership?
    /// Offsets committed so far (to skip commits that would change nothing).
    var committed: [TopicPartition: Int64] = [:]
    private(set) var isStopping = false

    /// Records fetched and not yet handed to the reader, at most about `capacity` of them.
    private var records = CircularBuffer<ConsumerRecord>()
    let capacity: Int
    private(set) var epoch: UInt64 = 0
    private var isFinished = false
    private var failure: (any Error)?
    /// Per partition, the offset after the last record handed to the reader: what a commit commits.
    private(set) var consumed: [TopicPartition: Int64] = [:]
    /// The assignment, positions or pauses changed since the fetcher last looked.
    private var fetcherHasWork = false

    var readers = ParkingLot<Void>()
    /// The fetcher, waiting for room in the buffer.
    var writers = ParkingLot<Void>()
    /// The fetcher, waiting for something to fetch.
    var fetcher = ParkingLot<Void>()
    /// `run()`, waiting to be told to stop.
    var stopping = ParkingLot<Void>()
    /// Commits refused for a stale member epoch, waiting for the next heartbeat to bring the current one.
    var heartbeatAnswers = ParkingLot<Void>()

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    // MARK: - Assignment

    /// The partitions to fetch now (assigned, not paused), with the epoch they are fetched under.
    var fetchable: (positions: [TopicPartition: Int64], epoch: UInt64) {
        (positions.filter { !paused.contains($0.key) }, epoch)
    }

    /// Installs an assignment (after a rebalance, or at start in manual mode): records buffered for
    /// partitions no longer assigned are dropped, and so is everything still being fetched.
    mutating func install(_ assignment: [TopicPartition: Int64]) -> Wakeups<Void> {
        positions = assignment
        paused = paused.intersection(assignment.keys)
        return newEpoch { assignment[$0] != nil }
    }

    /// Adds partitions to the assignment (the consumer protocol's incremental reconciliation): what is
    /// buffered or being fetched for the others stays.
    mutating func add(_ assignment: [TopicPartition: Int64]) -> Wakeups<Void> {
        positions.merge(assignment) { _, new in new }
        return wakeFetcher()
    }

    /// Takes partitions out of the assignment: their buffered records are dropped, and so is everything
    /// still being fetched (the others are fetched again from their positions).
    mutating func remove(_ partitions: Set<TopicPartition>) -> Wakeups<Void> {
        for partition in partitions { positions[partition] = nil }
        paused.subtract(partitions)
        return newEpoch { !partitions.contains($0) }
    }

    /// Moves a partition's position; its buffered records are dropped.
    mutating func seek(_ partition: TopicPartition, to offset: Int64) -> Wakeups<Void> {
        positions[partition] = offset
        consumed[partition] = nil
        return newEpoch { $0 != partition }
    }

    mutating func pause(_ partitions: [TopicPartition]) {
        paused.formUnion(partitions)
    }

    mutating func resume(_ partitions: [TopicPartition]) -> Wakeups<Void> {
        paused.subtract(partitions)
        return wakeFetcher()
    }

    /// What a commit would commit: the reader's offsets not yet committed, of assigned partitions and of
    /// `givenUp` (partitions just taken away, committed on their way out).
    func uncommitted(including givenUp: Set<TopicPartition> = []) -> [TopicPartition: Int64] {
        consumed.filter { partition, offset in
            (positions[partition] != nil || givenUp.contains(partition)) && committed[partition] != offset
        }
    }

    /// Forgets how far the reader got in partitions given up (they are committed, or not ours now).
    mutating func forget(_ partitions: Set<TopicPartition>) {
        for partition in partitions { consumed[partition] = nil }
    }

    /// For the fetcher's park: whether anything changed since it last looked.
    mutating func takeFetcherWork() -> Void? {
        guard fetcherHasWork || isStopping else { return nil }
        fetcherHasWork = false
        return ()
    }

    private mutating func newEpoch(keeping keep: (TopicPartition) -> Bool) -> Wakeups<Void> {
        epoch += 1
        records = CircularBuffer(records.filter { keep($0.topicPartition) })
        var wakeups = writers.resumeAll()
        wakeups.append(wakeFetcher())
        return wakeups
    }

    private mutating func wakeFetcher() -> Wakeups<Void> {
        fetcherHasWork = true
        return fetcher.resumeAll()
    }

    // MARK: - Records

    enum PushResult {
        /// Buffered; the partition's position moved past them.
        case accepted(Wakeups<Void>)
        /// Fetched under an epoch that has ended (or the consumer finished): dropped.
        case dropped
        /// No room: wait (`writers`) and try again.
        case full
    }

    /// Records of `partition` fetched from `from` under `epoch`; `next` is the offset after the last
    /// batch fetched (past any control records). Buffering them and moving the position is one step.
    mutating func push(
        _ fetched: [ConsumerRecord],
        of partition: TopicPartition,
        from: Int64,
        next: Int64,
        epoch: UInt64
    ) -> PushResult {
        if isFinished || epoch != self.epoch { return .dropped }
        if !fetched.isEmpty && records.count >= capacity { return .full }
        records.append(contentsOf: fetched)
        if positions[partition] == from { positions[partition] = max(from, next) }
        return .accepted(fetched.isEmpty ? Wakeups() : readers.resumeAll())
    }

    /// For a fetcher waiting for room: whether it should try again.
    func canPush(epoch: UInt64) -> Bool {
        isFinished || epoch != self.epoch || records.count < capacity
    }

    /// Moves a position that fell outside the log, unless the assignment moved on meanwhile.
    mutating func reset(_ partition: TopicPartition, from: Int64, to offset: Int64, epoch: UInt64) {
        if epoch == self.epoch, positions[partition] == from { positions[partition] = offset }
    }

    /// The reader takes the next record: a record, nil at the end (or the failure that ended it), or
    /// `nil` outside (nothing yet: park on `readers`).
    mutating func takeRecord() -> (Result<ConsumerRecord?, any Error>?, Wakeups<Void>) {
        if let record = records.popFirst() {
            consumed[record.topicPartition] = record.offset + 1
            return (.success(record), records.count < capacity ? writers.resumeAll() : Wakeups())
        }
        if isFinished { return (failure.map { .failure($0) } ?? .success(nil), Wakeups()) }
        return (nil, Wakeups())
    }

    /// Kafka's position: the offset of the next record the reader gets from `partition` (the first one
    /// buffered, or else where its next fetch starts). Every record before it was handed out or is not in
    /// the log (compacted away, a control record). Nil if the partition is not assigned.
    func position(of partition: TopicPartition) -> Int64? {
        guard let fetchPosition = positions[partition] else { return nil }
        return records.first { $0.topicPartition == partition }?.offset ?? fetchPosition
    }

    /// For the reader's park: whether there is something to take.
    var hasRecordOrEnd: Bool { !records.isEmpty || isFinished }

    // MARK: - Stopping

    /// `stop()`: `run()` finishes (commits, leaves the group) and the fetcher stops.
    mutating func stop() -> Wakeups<Void> {
        isStopping = true
        var wakeups = stopping.resumeAll()
        wakeups.append(heartbeatAnswers.resumeAll())
        wakeups.append(wakeFetcher())
        return wakeups
    }

    /// For `run()`'s park.
    var stopRequested: Void? { isStopping ? () : nil }

    /// Ends the records: the reader gets what is buffered, then the end (or `error`).
    mutating func finish(error: (any Error)?) -> Wakeups<Void> {
        isFinished = true
        failure = error
        var wakeups = readers.resumeAll()
        wakeups.append(writers.resumeAll())
        return wakeups
    }
}
