/// Retention: whole segments are deleted, oldest first, once they are past the time or size limit.
extension PartitionLog {
    public struct RetentionResult: Sendable, Hashable {
        public var deletedSegments: Int
        public var deletedBytes: Int
        public var logStartOffset: Int64
    }

    /// Deletes the oldest segments whose newest record is older than `retention.ms`, then the oldest
    /// while the partition is larger than `retention.bytes` without them. The active segment is never
    /// deleted by size; when it has expired by time it is rolled first, so an idle partition's old data
    /// goes too (and the log start moves to the end: the partition is empty but keeps its offsets).
    @discardableResult
    public func enforceRetention(now: Int64) throws -> RetentionResult {
        let doomed = try state.withLock { state -> [(baseOffset: Int64, size: Int)] in
            guard !state.isClosed else { return [] }
            let config = state.config
            var doomed: [LogSegment] = []
            if config.retentionMs >= 0 {
                for segment in state.segments {
                    if segment.isEmpty { break }
                    let newest = segment.maxTimestamp >= 0 ? segment.maxTimestamp : segment.firstAppendTime ?? now
                    guard now - newest > config.retentionMs else { break }
                    if segment === state.active { try roll(&state) }
                    doomed.append(segment)
                }
            }
            if config.retentionBytes >= 0 {
                var total = state.segments.reduce(0) { $0 + $1.size } - doomed.reduce(0) { $0 + $1.size }
                for segment in state.segments.dropFirst(doomed.count) where segment !== state.active {
                    guard total - segment.size >= config.retentionBytes else { break }
                    doomed.append(segment)
                    total -= segment.size
                }
            }
            state.segments.removeFirst(doomed.count)
            state.recoveryPoint = max(state.recoveryPoint, state.logStartOffset)
            if !doomed.isEmpty { state.directoryChanges += 1 }
            return doomed.map { ($0.baseOffset, $0.size) }
        }
        // Readers holding one of these segments keep its file open and readable until they finish.
        for segment in doomed { LogSegment.deleteFiles(directory: directory, baseOffset: segment.baseOffset) }
        if !doomed.isEmpty {
            logger.info(
                "retention deleted segments",
                metadata: ["segments": "\(doomed.count)", "logStartOffset": "\(logStartOffset)"]
            )
        }
        return RetentionResult(
            deletedSegments: doomed.count,
            deletedBytes: doomed.reduce(0) { $0 + $1.size },
            logStartOffset: logStartOffset
        )
    }
}
