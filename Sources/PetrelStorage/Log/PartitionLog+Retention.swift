/// Retention: whole segments are deleted, oldest first, once they are past the time or size limit.
extension PartitionLog {
    public struct RetentionResult: Sendable, Hashable {
        public var deletedSegments: Int
        public var deletedBytes: Int
        public var logStartOffset: Int64
    }

    /// Deletes the oldest segments whose newest record is older than `retention.ms`, then the oldest
    /// while the partition is larger than `retention.bytes` without them (when cleanup.policy has delete). The active segment is never
    /// deleted by size; when it has expired by time it is rolled first, so an idle partition's old data
    /// goes too (and the log start moves to the end: the partition is empty but keeps its offsets).
    @discardableResult
    public func enforceRetention(now: Int64) throws -> RetentionResult {
        let removed = try state.withLock { state -> [(baseOffset: Int64, size: Int)] in
            // A compact-only topic keeps every key's latest record however old: the cleaner, not
            // retention, bounds it.
            guard !state.isClosed, state.config.deletesByRetention else { return [] }
            let config = state.config
            var doomed = 0
            if config.retentionMs >= 0 {
                for segment in state.segments {
                    if segment.isEmpty { break }
                    let newest = segment.maxTimestamp >= 0 ? segment.maxTimestamp : segment.firstAppendTime ?? now
                    guard now - newest > config.retentionMs else { break }
                    if segment === state.active { try roll(&state) }
                    doomed += 1
                }
            }
            if config.retentionBytes >= 0 {
                let kept = state.segments.dropFirst(doomed)
                var total = kept.reduce(0) { $0 + $1.size }
                for segment in kept where segment !== state.active {
                    guard total - segment.size >= config.retentionBytes else { break }
                    doomed += 1
                    total -= segment.size
                }
            }
            guard doomed > 0 else { return [] }
            return moveLogStart(&state, to: state.segments[doomed].baseOffset)
        }
        deleteFiles(of: removed, reason: "retention deleted segments")
        if !removed.isEmpty { metrics.logStartMovedByRetention.increment() }
        return RetentionResult(
            deletedSegments: removed.count,
            deletedBytes: removed.reduce(0) { $0 + $1.size },
            logStartOffset: logStartOffset
        )
    }

    /// DeleteRecords: hides every record below `offset` (-1: the high watermark) and deletes the
    /// segments wholly below it. Returns the new log start offset (the low watermark). Moving it backwards
    /// changes nothing; past the high watermark is `offsetOutOfRange`.
    public func deleteRecords(before offset: Int64) throws -> Int64 {
        let (removed, start, moved) = try state.withLock {
            state -> ([(baseOffset: Int64, size: Int)], Int64, Bool) in
            let end = state.logEndOffset
            let target = offset == -1 ? end : offset
            guard target >= 0, target <= end else {
                throw ReadError.offsetOutOfRange(logStartOffset: state.logStartOffset, logEndOffset: end)
            }
            let before = state.logStartOffset
            let removed = moveLogStart(&state, to: target)
            return (removed, state.logStartOffset, state.logStartOffset > before)
        }
        deleteFiles(of: removed, reason: "deleted records below the new log start")
        if moved { metrics.logStartMovedByDeleteRecords.increment() }
        return start
    }

    /// The one way the log start moves (retention and DeleteRecords): forward to `offset`, dropping every
    /// segment but the active one that ends at or before it. Returns the dropped segments, whose files the
    /// caller deletes outside the lock.
    func moveLogStart(_ state: inout State, to offset: Int64) -> [(baseOffset: Int64, size: Int)] {
        guard offset > state.logStartOffset else { return [] }
        state.logStartOffset = offset
        var removed: [(baseOffset: Int64, size: Int)] = []
        while state.segments.count > 1, state.segments[0].nextOffset <= offset {
            let segment = state.segments.removeFirst()
            segment.close()
            removed.append((segment.baseOffset, segment.size))
        }
        state.recoveryPoint = max(state.recoveryPoint, state.segments[0].baseOffset)
        if !removed.isEmpty { state.directoryChanges += 1 }
        return removed
    }

    /// Readers holding one of these segments keep its file open and readable until they finish.
    private func deleteFiles(of segments: [(baseOffset: Int64, size: Int)], reason: String) {
        for segment in segments { LogSegment.deleteFiles(directory: directory, baseOffset: segment.baseOffset) }
        if !segments.isEmpty {
            logger.info(
                "\(reason)",
                metadata: ["segments": "\(segments.count)", "logStartOffset": "\(logStartOffset)"]
            )
        }
    }
}
