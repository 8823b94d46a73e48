import Logging
import NIOCore
import PetrelProtocol
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The log of one topic partition: an ordered list of segments in the folder `<topic>-<partition>`,
/// of which only the last (the active segment) takes appends.
///
/// Thread-safe: appends and segment changes are serialised by a lock; reads take the lock only to find
/// positions and read the file outside it.
public final class PartitionLog: Sendable {
    public let topic: String
    public let partition: Int32
    public let directory: String
    let state: Mutex<State>
    let logger: Logger
    let metrics: StorageMetrics
    /// Where the segments' files are opened, shared by every partition of the broker.
    let files: FileCache

    struct State {
        var segments: [LogSegment]
        var config: LogConfig
        var isClosed = false
        /// Every offset below this is on stable storage (Kafka's recovery point).
        var recoveryPoint: Int64
        var lastFlushTime: Int64 = 0
        /// Appends waiting for an fsync (flush policy `always`), by the last offset they need durable.
        var flushWaiters: [(offset: Int64, continuation: CheckedContinuation<Void, any Error>)] = []
        var isFlushing = false
        var completedFlushes = 0
        /// Files created or removed in the partition's folder since its last fsync: a new segment's name
        /// is durable only once the folder is fsynced, so a flush covering it must sync the folder too.
        var directoryChanges = 0
        /// The folder itself was created and its parent not fsynced since.
        var parentDirectoryChanged = false
        /// Idempotent producers' recent batches, for duplicate detection, and their open transactions.
        var producers = ProducerStates()
        /// The aborted transactions whose markers are in the log, by marker offset (the segments'
        /// `.txnindex` files, in memory): read_committed fetches look them up here.
        var abortedTransactions: [AbortedTransaction] = []

        /// The first offset readers may see: the first segment's base, or past it once DeleteRecords or
        /// retention moved it (records below it are hidden until their segment goes).
        var logStartOffset: Int64
        /// The log cleaner's checkpoint: every offset below it has been compacted (compacted topics only).
        var firstDirtyOffset: Int64 = 0

        var active: LogSegment { segments[segments.count - 1] }
        var logEndOffset: Int64 { active.nextOffset }

        /// The segment holding `offset`: the last whose base offset is at or below it.
        func segmentIndex(for offset: Int64) -> Int? {
            var low = 0
            var high = segments.count
            while low < high {
                let middle = (low + high) / 2
                if segments[middle].baseOffset <= offset { low = middle + 1 } else { high = middle }
            }
            return low == 0 ? nil : low - 1
        }
    }

    /// The leader epoch stamped into every stored batch. One broker never changes leader, so it is constant.
    public static let leaderEpoch: Int32 = 0

    // MARK: - Opening

    /// Opens the partition's folder (creating it if needed) and loads its segments. After an unclean
    /// shutdown the active segment is scanned and truncated at the first torn or corrupt batch.
    /// - Parameter recoveryPoint: the offset below which the log was last known to be on stable storage;
    ///   after an unclean shutdown, segments holding offsets at or above it are scanned and repaired.
    public init(
        directory: String,
        topic: String,
        partition: Int32,
        config: LogConfig,
        cleanShutdown: Bool,
        recoveryPoint: Int64 = 0,
        logStartOffset: Int64 = 0,
        firstDirtyOffset: Int64 = 0,
        logger: Logger,
        metrics: StorageMetrics = .disabled,
        files: FileCache = .shared
    ) throws {
        self.topic = topic
        self.metrics = metrics
        self.files = files
        self.partition = partition
        self.directory = directory
        var logger = logger
        logger[metadataKey: "partition"] = "\(topic)-\(partition)"
        self.logger = logger
        var directoryChanges = 0
        let folderCreated = !FileManager.default.fileExists(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if folderCreated { directoryChanges += 1 }

        // A cleaning cut short by a crash is rolled back or completed before the segments are read.
        let swapped = try CleanerFiles.finishInterruptedCleaning(directory: directory, logger: logger)
        if !swapped.isEmpty { directoryChanges += 1 }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        let bases = names.compactMap { name -> Int64? in
            guard name.hasSuffix(".log"), name.count == 24 else { return nil }
            return Int64(name.dropLast(4))
        }.sorted()
        var segments: [LogSegment] = []
        for (index, base) in bases.enumerated() {
            let segment = try LogSegment(
                directory: directory,
                baseOffset: base,
                indexIntervalBytes: config.indexIntervalBytes,
                files: files
            )
            // A segment wholly below the recovery point was fsynced and can be trusted; the others may
            // have lost or torn writes if the machine (not just the process) went down.
            let isDurable = index + 1 < bases.count && bases[index + 1] <= recoveryPoint
            let trusted = (cleanShutdown || isDurable) && !swapped.contains(base)
            let result = try trusted ? segment.loadAfterCleanShutdown() : segment.recover()
            segments.append(segment)
            if result.truncatedBytes > 0 {
                logger.warning(
                    "recovery truncated a torn or corrupt tail",
                    metadata: [
                        "segment": "\(base)", "bytes": "\(result.truncatedBytes)",
                        "validBatches": "\(result.validBatches)",
                    ]
                )
                // Whatever followed the damage cannot be attached to it without a gap in the offsets.
                if index + 1 < bases.count { directoryChanges += 1 }
                for later in bases[(index + 1)...] {
                    logger.warning("recovery removed a segment after the damage", metadata: ["segment": "\(later)"])
                    for suffix in LogSegment.allFileSuffixes {
                        unlinkFile(directory + "/" + LogSegment.fileName(baseOffset: later, suffix: suffix))
                    }
                }
                break
            }
        }
        // Index files whose log is gone are leftovers of an interrupted deletion.
        for name in names
        where name.hasSuffix(".index") || name.hasSuffix(".timeindex") || name.hasSuffix(TransactionIndex.suffix) {
            let stem = name.split(separator: ".")[0]
            if !names.contains(stem + ".log") { unlinkFile(directory + "/" + name) }
        }
        if segments.isEmpty {
            segments.append(
                try LogSegment(
                    directory: directory,
                    baseOffset: 0,
                    indexIntervalBytes: config.indexIntervalBytes,
                    files: files
                )
            )
            directoryChanges += 1
        }
        let end = segments[segments.count - 1].nextOffset
        var state = State(
            segments: segments,
            config: config,
            recoveryPoint: cleanShutdown ? end : min(recoveryPoint, end),
            logStartOffset: min(max(logStartOffset, segments[0].baseOffset), end)
        )
        state.firstDirtyOffset = min(firstDirtyOffset, end)
        state.directoryChanges = directoryChanges
        state.parentDirectoryChanged = folderCreated
        var aborted: [AbortedTransaction] = []
        for segment in segments {
            let entries = try TransactionIndex.read(directory: directory, baseOffset: segment.baseOffset)
            // Entries of markers that recovery cut off go with them.
            let kept = entries.filter { $0.lastOffset < segment.nextOffset }
            if kept.count != entries.count {
                try TransactionIndex.rewrite(kept, directory: directory, baseOffset: segment.baseOffset)
            }
            segment.hasTransactionIndex = !kept.isEmpty
            aborted += kept
        }
        (state.producers, state.abortedTransactions) = try Self.loadProducers(
            segments: segments,
            directory: directory,
            aborted: aborted,
            logger: logger
        )
        self.state = Mutex(state)
    }

    // MARK: - Offsets

    public var logStartOffset: Int64 { state.withLock { $0.logStartOffset } }
    /// The offset the next record gets (also the high watermark: one broker has no followers to wait for).
    public var logEndOffset: Int64 { state.withLock { $0.logEndOffset } }
    public var config: LogConfig { state.withLock { $0.config } }
    public var segmentCount: Int { state.withLock { $0.segments.count } }
    public var segmentBaseOffsets: [Int64] { state.withLock { $0.segments.map(\.baseOffset) } }
    /// Bytes across all segments.
    public var sizeInBytes: Int { state.withLock { $0.segments.reduce(0) { $0 + $1.size } } }

    public func updateConfig(_ config: LogConfig) {
        state.withLock { $0.config = config }
    }

    // MARK: - Appending

    public struct AppendResult: Sendable, Hashable {
        public var baseOffset: Int64
        public var lastOffset: Int64
        public var logStartOffset: Int64
        /// The batch was a retry of one already in the log (same producer, epoch and sequences): nothing
        /// was written, and the offsets are the original ones.
        public var isDuplicate = false
    }

    /// An idempotent batch that breaks its producer's sequence; nothing was written.
    public struct ProducerSequenceError: Error, Hashable, Sendable, CustomStringConvertible {
        public var code: ErrorCode
        public var message: String
        public var description: String { "\(code.name): \(message)" }
    }

    /// Appends one batch that `RecordBatchValidator` accepted, assigning its offsets. The batch's bytes are
    /// written as they are but for the base offset and leader epoch, which the CRC does not cover.
    /// Idempotent batches are checked against their producer's sequence first, in the same step.
    public func append(_ batch: ByteBuffer, header: RecordBatchHeader, now: Int64) throws -> AppendResult {
        try state.withLock { state in
            guard !state.isClosed else { throw StorageError("append", path: directory, reason: "the log is closed") }
            switch state.producers.check(header) {
            case .append:
                break
            case .duplicate(let first, let last):
                return AppendResult(
                    baseOffset: first,
                    lastOffset: last,
                    logStartOffset: state.logStartOffset,
                    isDuplicate: true
                )
            case .reject(let code, let message):
                throw ProducerSequenceError(code: code, message: message)
            }
            if shouldRoll(state, incoming: header, now: now) { try roll(&state) }
            var header = header
            header.baseOffset = state.logEndOffset
            header.partitionLeaderEpoch = Self.leaderEpoch
            let active = state.active
            do {
                try active.append(batch: batch, header: header, now: now)
            } catch {
                // Positional writes leave whatever part was written beyond the segment's size; cut it off
                // so that nothing half-written is ever recovered as data.
                try? active.log.truncate(to: active.size)
                throw error
            }
            state.producers.record(header, now: now)
            return AppendResult(
                baseOffset: header.baseOffset,
                lastOffset: header.lastOffset,
                logStartOffset: state.logStartOffset
            )
        }
    }

    func shouldRoll(_ state: State, incoming header: RecordBatchHeader, now: Int64) -> Bool {
        let active = state.active
        guard !active.isEmpty else { return false }
        if active.size + header.totalSize > state.config.segmentBytes { return true }
        if let first = active.firstAppendTime, now - first >= state.config.segmentMs { return true }
        // Index entries hold offsets relative to the base in 32 bits.
        return active.nextOffset + Int64(header.recordCount) - active.baseOffset > Int64(Int32.max)
    }

    func roll(_ state: inout State) throws {
        let previous = state.active
        try previous.seal()
        // The producers as of the new segment's start: a restart replays only what follows.
        try writeProducerSnapshot(&state, now: wallClockMillis())
        let next = try LogSegment(
            directory: directory,
            baseOffset: previous.nextOffset,
            indexIntervalBytes: state.config.indexIntervalBytes,
            files: files
        )
        state.segments.append(next)
        state.directoryChanges += 1
        // A rolled segment is never written again: make it durable now, off this thread, so the recovery
        // point moves past it and recovery after a crash starts at the active segment.
        startFlushIfIdle(&state)
        logger.debug("rolled a new segment", metadata: ["baseOffset": "\(next.baseOffset)"])
    }

    // MARK: - Reading

    public enum ReadError: Error, Hashable, Sendable {
        case offsetOutOfRange(logStartOffset: Int64, logEndOffset: Int64)
    }

    /// Finds whole batches from the one containing `offset`, up to `maxBytes`. With `minOneBatch` the
    /// first batch is returned even if it is larger than `maxBytes`, so a consumer can always progress.
    /// With `readCommitted` only batches below the last stable offset are returned, with the aborted
    /// transactions among them.
    public func read(
        from offset: Int64,
        maxBytes: Int,
        minOneBatch: Bool = true,
        readCommitted: Bool = false
    ) throws -> LogReadResult {
        // Under the lock: the offsets, and where in which segment file to look.
        let (found, result) = try state.withLock {
            state throws -> ((SegmentReader, SegmentReader.Bounds)?, LogReadResult) in
            let start = state.logStartOffset
            let end = state.logEndOffset
            guard offset >= start, offset <= end else {
                throw ReadError.offsetOutOfRange(logStartOffset: start, logEndOffset: end)
            }
            let stable = Self.lastStableOffset(state)
            var result = LogReadResult(slice: nil, highWatermark: end, logStartOffset: start, lastStableOffset: stable)
            let limit = readCommitted ? stable : end
            guard offset < limit, let index = state.segmentIndex(for: offset) else { return (nil, result) }
            if readCommitted { result.abortedTransactions = Self.abortedTransactions(state, from: offset, to: limit) }
            let segment = state.segments[index]
            var bounds = segment.readBounds(for: offset, maxBytes: maxBytes)
            bounds.endOffset = limit
            return ((try segment.reader, bounds), result)
        }
        // Outside it: the walk over batch headers.
        var read = result
        read.slice = try found.flatMap { reader, bounds in
            try reader.slice(from: offset, within: bounds, maxBytes: maxBytes, minOneBatch: minOneBatch)
        }
        return read
    }

    // MARK: - Flushing, closing, deleting

    /// Seals and syncs what is not yet durable; later appends fail.
    public func close() throws {
        try state.withLock { state in
            guard !state.isClosed else { return }
            state.isClosed = true
            try state.active.seal()
            try writeProducerSnapshot(&state, now: wallClockMillis())
            for segment in state.segments where segment.nextOffset > state.recoveryPoint || segment === state.active {
                try segment.sync()
            }
            try syncDirectories(changes: state.directoryChanges, parent: state.parentDirectoryChanged)
            state.directoryChanges = 0
            state.parentDirectoryChanged = false
            state.recoveryPoint = state.logEndOffset
            for segment in state.segments { segment.close() }
        }
    }

    /// Marks the log closed without touching its files (they are about to be removed), and lets go of
    /// them, so their space is freed as soon as no read holds them.
    func abandon() {
        state.withLock { state in
            state.isClosed = true
            for segment in state.segments { segment.close() }
        }
    }
}

/// The result of a read: where the bytes are (if any) and the partition's offsets at that moment.
public struct LogReadResult: Sendable {
    public var slice: LogSlice?
    public var highWatermark: Int64
    public var logStartOffset: Int64
    public var lastStableOffset: Int64
    /// For read_committed reads: the aborted transactions with data in the range that may be read.
    public var abortedTransactions: [AbortedTransaction] = []
}
