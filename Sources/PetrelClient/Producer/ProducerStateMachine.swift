/// All of a `KafkaProducer`'s mutable state: the records it holds, whether it is closing, and the tasks
/// waiting on it (flushes, room in the buffer, the sender loop). Events go in as methods; what must
/// happen next comes out: batches to send, or tasks to wake once the lock is released. Time comes in as
/// an argument (`now`, ms since the epoch), so tests drive it with a fake clock. Not thread-safe:
/// `KafkaProducer` holds it in a `LockedStateMachine`.
struct ProducerStateMachine {
    var accumulator: RecordAccumulator
    /// For a transactional producer, its transaction's state.
    var transaction: ProducerTransaction?
    let bufferBytes: Int
    private(set) var isClosing = false
    private(set) var nextReportID: UInt64 = 1
    /// Flushes asked for and not yet served: the sender sends lingering batches at once meanwhile.
    private(set) var flushRequested = false
    /// Something for the sender to look at (set by the events that wake it; it may be parked).
    private(set) var senderHasWork = false

    /// `sendAndWait` callers, each waiting for its record's outcome.
    var deliveries = ParkingLot<DeliveryResult>()
    var flushes = ParkingLot<Void>()
    var room = ParkingLot<Void>()
    var sender = ParkingLot<Void>()

    init(configuration: KafkaProducerConfiguration) {
        accumulator = RecordAccumulator(configuration: configuration)
        bufferBytes = configuration.bufferBytes
        transaction = configuration.transactionalID.map(ProducerTransaction.init(transactionalID:))
    }

    var hasRoom: Bool { accumulator.bufferedBytes < bufferBytes }
    var isEmpty: Bool { accumulator.isEmpty }

    /// The next delivery report id.
    mutating func takeReportID() -> UInt64 {
        defer { nextReportID += 1 }
        return nextReportID
    }

    // MARK: - Events from callers

    /// A record for `partition`. Wakes the sender if a batch just opened (its linger needs timing) or
    /// filled up.
    mutating func append(
        _ record: ProducerRecord,
        partition: Int32,
        timestamp: Int64,
        waiter: DeliveryWaiter,
        now: Int64
    ) -> Wakeups<Void> {
        let senderShouldLook = accumulator.append(
            record,
            partition: partition,
            timestamp: timestamp,
            waiter: waiter,
            now: now
        )
        return senderShouldLook ? wakeSender() : Wakeups()
    }

    /// A flush begins: lingering batches go out now. Nil if there is nothing to flush.
    mutating func requestFlush() -> Wakeups<Void>? {
        guard !accumulator.isEmpty else { return nil }
        flushRequested = true
        return wakeSender()
    }

    /// Stops taking records; the sender delivers what is queued and then ends.
    mutating func close() -> Wakeups<Void> {
        isClosing = true
        return wakeSender()
    }

    // MARK: - Events from the sender

    enum SenderAction {
        /// Send these batches (each to its partition's leader).
        case send([SealedBatch])
        /// Nothing is ready: park until woken, or until this time (ms since the epoch) at the latest.
        case wait(until: Int64?)
        /// Closing, and everything is delivered: the sender is done.
        case finish
    }

    /// What the sender should do now. Takes any pending wake-up, since the sender is looking now.
    mutating func nextSenderAction(now: Int64) throws -> SenderAction {
        senderHasWork = false
        if isClosing && accumulator.isEmpty { return .finish }
        let drained = try accumulator.drainReady(now: now, force: flushRequested || isClosing)
        if drained.batches.isEmpty { return .wait(until: drained.nextDeadline) }
        return .send(drained.batches)
    }

    /// For the sender's park: whether it was woken since it last looked.
    mutating func takeSenderWork() -> Void? {
        guard senderHasWork else { return nil }
        senderHasWork = false
        return ()
    }

    /// A batch is done, delivered or failed for good: its partition may send again, flushes end once
    /// nothing is left, and senders waiting for room go on once there is some.
    mutating func finished(_ batch: SealedBatch) -> Wakeups<Void> {
        accumulator.finish(batch)
        var wakeups = wakeSender()
        if accumulator.isEmpty {
            flushRequested = false
            wakeups.append(flushes.resumeAll())
        }
        if hasRoom { wakeups.append(room.resumeAll()) }
        return wakeups
    }

    /// A batch failed in a way worth retrying: back to the front of its partition's queue after `backoff`.
    mutating func requeue(_ batch: SealedBatch, now: Int64, backoff: Int64) -> Wakeups<Void> {
        accumulator.requeue(batch, now: now, backoff: backoff)
        return wakeSender()
    }

    /// The producer stops for good: every record not in flight is handed back to be failed, and every
    /// waiting task is woken. Batches in flight finish as usual.
    mutating func failAll() -> (records: [PendingRecord], wakeups: Wakeups<Void>) {
        let records = accumulator.removeQueued()
        isClosing = true
        flushRequested = false
        var wakeups = flushes.resumeAll()
        wakeups.append(room.resumeAll())
        wakeups.append(sender.resumeAll())
        return (records, wakeups)
    }

    private mutating func wakeSender() -> Wakeups<Void> {
        senderHasWork = true
        return sender.resumeAll()
    }
}
