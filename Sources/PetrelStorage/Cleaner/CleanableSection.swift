/// What the log cleaner sees of a compacted partition at one moment: the part already clean (below
/// `firstDirtyOffset`), the dirty part it may clean, and where it must stop.
public struct CleanableSection: Sendable, Hashable {
    /// Every offset below this was compacted by an earlier cleaning.
    public var firstDirtyOffset: Int64
    /// The first offset the cleaner may not touch: the active segment's base, or the base of an earlier
    /// segment holding records younger than min.compaction.lag.ms.
    public var firstUncleanableOffset: Int64
    /// Bytes of the segments below the first dirty offset.
    public var cleanBytes: Int
    /// Bytes of the segments between the first dirty and the first uncleanable offset.
    public var dirtyBytes: Int
    /// A dirty record is older than max.compaction.lag.ms: the log is cleaned whatever its dirty ratio.
    public var isOverdue: Bool
    public var minCleanableDirtyRatio: Double

    /// The dirty share of the cleanable bytes.
    public var dirtyRatio: Double {
        cleanBytes + dirtyBytes == 0 ? 0 : Double(dirtyBytes) / Double(cleanBytes + dirtyBytes)
    }

    /// Whether the cleaner should compact the partition now.
    public var needsCleaning: Bool {
        dirtyBytes > 0 && (isOverdue || dirtyRatio >= minCleanableDirtyRatio)
    }
}

extension PartitionLog {
    /// The partition as the cleaner sees it now; nil unless the topic is compacted.
    public func cleanableSection(now: Int64) -> CleanableSection? {
        state.withLock { Self.cleanableSection(of: $0, now: now) }
    }

    static func cleanableSection(of state: State, now: Int64) -> CleanableSection? {
        let config = state.config
        guard config.compacts, !state.isClosed else { return nil }
        var firstDirty = max(state.firstDirtyOffset, state.logStartOffset, state.segments[0].baseOffset)
        var firstUncleanable = state.active.baseOffset
        // Never past an open transaction: whether its records stay depends on how it ends.
        if let unstable = state.producers.firstUnstableOffset, let index = state.segmentIndex(for: unstable) {
            firstUncleanable = min(firstUncleanable, state.segments[index].baseOffset)
        }
        var clean = 0
        var dirty = 0
        var isOverdue = false
        for segment in state.segments.dropLast() where segment.baseOffset < firstUncleanable {
            if segment.nextOffset <= firstDirty {
                clean += segment.size
                continue
            }
            if config.minCompactionLagMs > 0, segment.maxTimestamp > now - config.minCompactionLagMs {
                firstUncleanable = segment.baseOffset
                break
            }
            dirty += segment.size
            if config.maxCompactionLagMs != .max, let first = segment.firstAppendTime,
                now - first > config.maxCompactionLagMs
            {
                isOverdue = true
            }
        }
        firstDirty = min(firstDirty, firstUncleanable)
        return CleanableSection(
            firstDirtyOffset: firstDirty,
            firstUncleanableOffset: firstUncleanable,
            cleanBytes: clean,
            dirtyBytes: firstDirty < firstUncleanable ? dirty : 0,
            isOverdue: isOverdue,
            minCleanableDirtyRatio: config.minCleanableDirtyRatio
        )
    }

    /// The cleaner's checkpoint: every offset below it is compacted.
    public var firstDirtyOffset: Int64 { state.withLock { $0.firstDirtyOffset } }
}
