import Dispatch
import Metrics
import PetrelProtocol

/// Making appends durable. fsyncs run on a Dispatch worker, never on the caller's thread (a Swift task
/// or an event loop must not block on the disk), and one fsync serves every append waiting at the time:
/// concurrent producers share fsyncs (group commit).
extension PartitionLog {
    /// Every offset below this is on stable storage.
    public var recoveryPoint: Int64 { state.withLock { $0.recoveryPoint } }

    /// Whether appended data is waiting for an fsync.
    public var hasUnflushedData: Bool { state.withLock { $0.logEndOffset > $0.recoveryPoint } }

    /// How many fsync rounds have completed (one round may serve many appends).
    public var completedFlushes: Int { state.withLock { $0.completedFlushes } }

    /// When the last fsync finished (ms since the epoch), 0 if none yet.
    public var lastFlushTime: Int64 { state.withLock { $0.lastFlushTime } }

    /// Returns once `offset` (and everything before it) is on stable storage.
    public func waitUntilDurable(through offset: Int64) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let done = state.withLock { state -> Bool in
                if offset < state.recoveryPoint { return true }
                state.flushWaiters.append((offset, continuation))
                startFlushIfIdle(&state)
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Starts an fsync of everything appended so far, unless one is already under way (which will look
    /// for more work when it finishes). Returns at once.
    public func flushInBackground() {
        state.withLock { state in
            if state.logEndOffset > state.recoveryPoint { startFlushIfIdle(&state) }
        }
    }

    func startFlushIfIdle(_ state: inout State) {
        guard !state.isFlushing else { return }
        state.isFlushing = true
        DispatchQueue.global(qos: .userInitiated).async { self.flushUntilIdle() }
    }

    /// Repeats: fsync every segment holding data past the recovery point, then release the waiters that
    /// fsync covered; stop when no append is left waiting.
    private func flushUntilIdle() {
        while true {
            let (target, files, directoryChanges, parentChanged) = state.withLock { state in
                // A closed log's folder may be gone (a deleted topic): nothing of it needs an fsync.
                (
                    state.logEndOffset,
                    Result {
                        try state.isClosed
                            ? []
                            : state.segments.filter { $0.nextOffset > state.recoveryPoint }.flatMap { try $0.files }
                    },
                    state.isClosed ? 0 : state.directoryChanges,
                    !state.isClosed && state.parentDirectoryChanged
                )
            }
            var failure: (any Error)?
            let started = ContinuousClock.now
            do {
                for file in try files.get() { try file.sync() }
                try syncDirectories(changes: directoryChanges, parent: parentChanged)
                metrics.flushDuration.record(duration: ContinuousClock.now - started)
            } catch {
                failure = error
                logger.error("fsync failed", metadata: ["error": "\(error)"])
            }
            let (released, more) = state.withLock { state in
                if failure == nil {
                    state.directoryChanges -= directoryChanges
                    if parentChanged { state.parentDirectoryChanged = false }
                    state.recoveryPoint = max(state.recoveryPoint, target)
                    state.lastFlushTime = wallClockMillis()
                    state.completedFlushes += 1
                }
                let covered = failure != nil ? state.flushWaiters : state.flushWaiters.filter { $0.offset < target }
                state.flushWaiters.removeAll { failure != nil || $0.offset < target }
                // Only waiting appends keep the loop going: under the `never` and `interval` policies a
                // steady stream of appends must not turn into back-to-back fsyncs.
                let more = !state.flushWaiters.isEmpty
                if !more { state.isFlushing = false }
                return (covered, more)
            }
            for waiter in released {
                if let failure { waiter.continuation.resume(throwing: failure) } else { waiter.continuation.resume() }
            }
            if !more { return }
        }
    }

    /// fsyncs everything appended so far, on the caller's thread: for start-up work that must be durable
    /// before the broker serves (moving an older data directory's offsets), when nothing else appends.
    public func flushNow() throws {
        try state.withLock { state in
            guard !state.isClosed else { return }
            for segment in state.segments where segment.nextOffset > state.recoveryPoint { try segment.sync() }
            try syncDirectories(changes: state.directoryChanges, parent: state.parentDirectoryChanged)
            state.directoryChanges = 0
            state.parentDirectoryChanged = false
            state.recoveryPoint = state.logEndOffset
        }
    }

    /// fsyncs the partition's folder if files were created or removed in it, and its parent if the
    /// folder itself is new: without it a power failure can lose a new segment, records and all, even
    /// though the segment's own data was fsynced (Kafka's `LocalLog.flush` does the same).
    func syncDirectories(changes: Int, parent: Bool) throws {
        if changes > 0 { try syncDirectory(directory) }
        if parent { try syncDirectory(parentDirectory(of: directory)) }
    }

    /// The folder's parent was fsynced by whoever created the folder (LogManager after creating a topic).
    func parentDirectoryIsDurable() {
        state.withLock { $0.parentDirectoryChanged = false }
    }
}
