import NIOCore
import PetrelProtocol

/// What one cleaning of a partition did.
public struct CleaningResult: Sendable, Hashable {
    /// Passes over the log: more than one when the dirty part holds more keys than the map.
    public var passes = 0
    public var bytesRead = 0
    public var bytesWritten = 0
    public var recordsRemoved = 0
    /// The cleaner's checkpoint afterwards.
    public var firstDirtyOffset: Int64 = 0
    /// Bytes of key → offset map the cleaning used (at most the budget it was given).
    public var mapBytes = 0
}

/// Log compaction of one partition, Kafka's way: build a map of each key's latest offset over the dirty
/// part of the log, then rewrite every segment below the map's end keeping only records that are their
/// key's latest (and tombstones until their delete horizon). Runs on a cleaner thread; the partition's
/// lock is taken only to look at the segments and, at the end, to swap the new ones in.
extension PartitionLog {
    /// The cleaner was told to stop (the broker is shutting down); what it had written is removed.
    public struct CleaningStopped: Error, Hashable, Sendable {}

    /// Compacts the partition up to its first uncleanable offset, in as many passes as a map of at most
    /// `memoryBytes` needs. Nil if there was nothing to clean (or the log changed under the cleaner, which
    /// then gives up and tries again later). `pace` is told the bytes of each batch read (it may sleep, to
    /// keep the cleaner's rate) and asked whether to go on; once it says no the
    /// cleaning throws `CleaningStopped`, leaving the log as it was (or as an earlier pass left it).
    public func clean(
        memoryBytes: Int,
        now: Int64,
        pace: (Int) -> Bool = { _ in true }
    ) throws -> CleaningResult? {
        guard let section = cleanableSection(now: now),
            section.firstDirtyOffset < section.firstUncleanableOffset
        else { return nil }
        var map = KeyOffsetMap(
            memoryBytes: KeyOffsetMap.bytesNeeded(
                keys: section.firstUncleanableOffset - section.firstDirtyOffset,
                budget: memoryBytes
            )
        )
        var result = CleaningResult(mapBytes: map.capacity * KeyOffsetMap.bytesPerSlot)
        while let pass = try cleanOnePass(map: &map, now: now, pace: pace) {
            result.passes += 1
            result.bytesRead += pass.bytesRead
            result.bytesWritten += pass.bytesWritten
            result.recordsRemoved += pass.recordsRemoved
            result.firstDirtyOffset = pass.firstDirtyOffset
            if !pass.mapWasFull { break }
            map.clear()
        }
        return result.passes > 0 ? result : nil
    }

    /// A segment as the cleaner reads it, outside the lock (cleanable segments no longer change).
    struct CleanerSegment: Sendable {
        var id: ObjectIdentifier
        var reader: SegmentReader
        var baseOffset: Int64
        var nextOffset: Int64
        var size: Int
    }

    private struct Plan: Sendable {
        var section: CleanableSection
        var segments: [CleanerSegment]
        var config: LogConfig
        /// The base offset of each idempotent producer's last batch: kept, if need be empty.
        var producersLastBatches: Set<Int64>
        /// Transactions that were aborted: their records are not values (and are removed).
        var aborted: [AbortedTransaction]

        func isAborted(_ header: RecordBatchHeader) -> Bool {
            header.attributes.isTransactional && !header.attributes.isControl
                && aborted.contains {
                    $0.producerID == header.producerID && $0.firstOffset <= header.baseOffset
                        && header.baseOffset < $0.lastOffset
                }
        }
    }

    private struct Pass {
        var bytesRead = 0
        var bytesWritten = 0
        var recordsRemoved = 0
        var firstDirtyOffset: Int64
        var mapWasFull: Bool
    }

    private func cleanOnePass(map: inout KeyOffsetMap, now: Int64, pace: (Int) -> Bool) throws -> Pass? {
        let plan = try state.withLock { state throws -> Plan? in
            guard let section = Self.cleanableSection(of: state, now: now),
                section.firstDirtyOffset < section.firstUncleanableOffset
            else { return nil }
            let segments = try state.segments.prefix { $0.nextOffset <= section.firstUncleanableOffset }.map {
                CleanerSegment(
                    id: ObjectIdentifier($0),
                    reader: try $0.reader,
                    baseOffset: $0.baseOffset,
                    nextOffset: $0.nextOffset,
                    size: $0.size
                )
            }
            let lastBatches = state.producers.entries.values.compactMap { $0.batches.last?.firstOffset }
            return Plan(
                section: section,
                segments: segments,
                config: state.config,
                producersLastBatches: Set(lastBatches),
                aborted: Self.abortedTransactions(
                    state,
                    from: segments.first?.baseOffset ?? 0,
                    to: section.firstUncleanableOffset
                )
            )
        }
        guard let plan else { return nil }
        let end = try buildMap(&map, plan: plan, pace: pace)
        let mapWasFull = end < plan.section.firstUncleanableOffset
        let groups = Self.groups(
            of: plan.segments.filter { $0.baseOffset < end },
            segmentBytes: plan.config.segmentBytes
        )
        var pass = Pass(firstDirtyOffset: end, mapWasFull: mapWasFull)
        do {
            for group in groups {
                try write(
                    group: group,
                    map: map,
                    mapEnd: end,
                    plan: plan,
                    now: now,
                    pass: &pass,
                    pace: pace
                )
            }
        } catch {
            for group in groups { CleanerFiles.discard(directory: directory, baseOffset: group[0].baseOffset) }
            throw error
        }
        guard try swapIn(groups, firstDirtyOffset: end) else {
            for group in groups { CleanerFiles.discard(directory: directory, baseOffset: group[0].baseOffset) }
            logger.info("the log changed during cleaning; it will be cleaned again later")
            return nil
        }
        logger.debug(
            "cleaned the log",
            metadata: [
                "firstDirtyOffset": "\(end)", "bytesRead": "\(pass.bytesRead)",
                "bytesWritten": "\(pass.bytesWritten)", "recordsRemoved": "\(pass.recordsRemoved)",
            ]
        )
        return pass
    }

    /// Puts each key of the dirty part in the map with its latest offset. Returns the offset the map
    /// covers up to: the first uncleanable offset, or the first record that no longer fit.
    private func buildMap(_ map: inout KeyOffsetMap, plan: Plan, pace: (Int) -> Bool) throws -> Int64 {
        let firstDirty = plan.section.firstDirtyOffset
        for segment in plan.segments where segment.nextOffset > firstDirty {
            var position = 0
            while let batch = try StoredBatch.read(from: segment.reader, at: position, limit: segment.size) {
                if !pace(batch.header.totalSize) { throw CleaningStopped() }
                position += batch.header.totalSize
                guard batch.header.lastOffset >= firstDirty, !plan.isAborted(batch.header) else { continue }
                var full: Int64?
                let finished = try batch.forEachKey { key, offset in
                    guard offset >= firstDirty else { return true }
                    if map.put(key: key, offset: offset) { return true }
                    full = offset
                    return false
                }
                if !finished, let full { return full }
            }
        }
        return plan.section.firstUncleanableOffset
    }

    /// Consecutive segments whose cleaned output goes into one new segment: at most `segmentBytes` of
    /// input, and offsets that fit the indexes' 32-bit relative offsets.
    static func groups(of segments: [CleanerSegment], segmentBytes: Int) -> [[CleanerSegment]] {
        var groups: [[CleanerSegment]] = []
        var bytes = 0
        for segment in segments {
            if let first = groups.last?.first, bytes + segment.size <= segmentBytes,
                segment.nextOffset - first.baseOffset <= Int64(Int32.max)
            {
                groups[groups.count - 1].append(segment)
                bytes += segment.size
            } else {
                groups.append([segment])
                bytes = segment.size
            }
        }
        return groups
    }

    /// Writes one group's cleaned segment as `.cleaned` files and fsyncs them.
    private func write(
        group: [CleanerSegment],
        map: KeyOffsetMap,
        mapEnd: Int64,
        plan: Plan,
        now: Int64,
        pass: inout Pass,
        pace: (Int) -> Bool
    ) throws {
        let base = group[0].baseOffset
        CleanerFiles.discard(directory: directory, baseOffset: base)
        let output = try LogSegment(
            directory: directory,
            baseOffset: base,
            indexIntervalBytes: plan.config.indexIntervalBytes,
            stage: CleanerFiles.cleaned,
            files: files
        )
        // Its files are renamed into place later and opened again under their own names.
        defer { output.close() }
        for (index, segment) in group.enumerated() {
            var position = 0
            while let batch = try StoredBatch.read(from: segment.reader, at: position, limit: segment.size) {
                if !pace(batch.header.totalSize) { throw CleaningStopped() }
                position += batch.header.totalSize
                pass.bytesRead += batch.header.totalSize
                let isLastOfGroup = index == group.count - 1 && position >= segment.size
                let mustStay = isLastOfGroup || plan.producersLastBatches.contains(batch.header.baseOffset)
                guard
                    let cleaned = try Self.clean(
                        batch,
                        map: map,
                        mapEnd: mapEnd,
                        now: now,
                        deleteRetentionMs: plan.config.deleteRetentionMs,
                        mustStay: mustStay,
                        isAborted: plan.isAborted(batch.header),
                        removed: &pass.recordsRemoved
                    )
                else { continue }
                try output.appendCleaned(batch: cleaned, header: RecordBatchHeader(peekingAt: 0, in: cleaned)!)
                pass.bytesWritten += cleaned.readableBytes
            }
        }
        try output.seal()
        try output.sync()
        // The aborted-transaction entries of the old segments stay with the data they describe.
        var aborted: [AbortedTransaction] = []
        for segment in group {
            aborted += try TransactionIndex.read(directory: directory, baseOffset: segment.baseOffset)
        }
        if !aborted.isEmpty {
            let path = TransactionIndex.path(directory: directory, baseOffset: base) + CleanerFiles.cleaned
            try writeAtomically(Array(TransactionIndex.encode(aborted).readableBytesView), to: path)
        }
    }

    /// One batch after cleaning: the same bytes if every record stays, a rebuilt batch if some go or a
    /// tombstone needs its delete horizon, an empty batch if none stay but the batch must, else nil.
    /// Records at or past `mapEnd` (the map did not cover them: a pass cut short by a full map) all stay
    /// as they are: what supersedes them, or whether a tombstone among them is the key's last word, is
    /// for a later pass to know (Kafka's cleaner keeps them too).
    static func clean(
        _ batch: StoredBatch,
        map: KeyOffsetMap,
        mapEnd: Int64 = .max,
        now: Int64,
        deleteRetentionMs: Int64,
        mustStay: Bool,
        isAborted: Bool = false,
        removed: inout Int
    ) throws -> ByteBuffer? {
        let header = batch.header
        // Control batches (transaction markers) are not keyed data; they stay as they are.
        if header.attributes.isControl || header.baseOffset >= mapEnd { return batch.bytes }
        let records = try batch.records()
        // A batch an earlier cleaning emptied stays only while it still has to.
        if records.isEmpty { return mustStay ? batch.bytes : nil }
        let horizon = header.attributes.hasDeleteHorizon ? header.baseTimestamp : nil
        let kept = records.filter { record in
            // An aborted transaction's records were never values.
            if isAborted { return false }
            if record.offset >= mapEnd { return true }
            // Keyless records cannot be compacted; Kafka's cleaner drops them too.
            guard let key = record.key else { return false }
            if let latest = key.withUnsafeReadableBytes({ map.offset(of: $0) }), latest > record.offset {
                return false
            }
            if record.isTombstone, let horizon, now >= horizon { return false }
            return true
        }
        removed += records.count - kept.count
        let needsHorizon = horizon == nil && kept.contains { $0.isTombstone && $0.offset < mapEnd }
        if kept.count == records.count && !needsHorizon {
            return batch.bytes
        }
        if kept.isEmpty { return mustStay ? CleanedBatch.empty(original: header) : nil }
        let newHorizon = needsHorizon ? now.addingReportingOverflow(deleteRetentionMs).partialValue : horizon
        return try CleanedBatch.build(original: header, kept: kept, deleteHorizon: newHorizon)
    }

    /// Puts the cleaned segments in place of the groups they replace (see `CleanerFiles`), unless the log
    /// changed meanwhile (retention or DeleteRecords removed a segment, the log was closed): then
    /// nothing is swapped and false is returned.
    private func swapIn(_ groups: [[CleanerSegment]], firstDirtyOffset: Int64) throws -> Bool {
        try state.withLock { state in
            guard !state.isClosed else { return false }
            var starts: [Int] = []
            for group in groups {
                guard let start = state.segments.firstIndex(where: { ObjectIdentifier($0) == group[0].id }),
                    start + group.count < state.segments.count,
                    zip(state.segments[start...], group).allSatisfy({ ObjectIdentifier($0) == $1.id })
                else { return false }
                starts.append(start)
            }
            for group in groups { try CleanerFiles.markForSwap(directory: directory, baseOffset: group[0].baseOffset) }
            try syncDirectory(directory)
            for group in groups {
                try CleanerFiles.swapIn(
                    directory: directory,
                    baseOffset: group[0].baseOffset,
                    replacing: group.map(\.baseOffset)
                )
            }
            try syncDirectory(directory)
            // Last group first, so the earlier groups' positions stay valid.
            for (group, start) in zip(groups, starts).reversed() {
                let segment = try LogSegment(
                    directory: directory,
                    baseOffset: group[0].baseOffset,
                    indexIntervalBytes: state.config.indexIntervalBytes,
                    files: files
                )
                _ = try segment.loadAfterCleanShutdown()
                segment.hasTransactionIndex = CleanerFiles.fileExists(
                    TransactionIndex.path(directory: directory, baseOffset: segment.baseOffset)
                )
                for replaced in state.segments[start..<(start + group.count)] { replaced.close() }
                state.segments.replaceSubrange(start..<(start + group.count), with: [segment])
            }
            state.firstDirtyOffset = max(state.firstDirtyOffset, firstDirtyOffset)
            return true
        }
    }
}
