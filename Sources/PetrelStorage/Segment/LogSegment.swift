import NIOCore
import PetrelProtocol

/// One segment of a partition: `<base>.log` holds record batches exactly as they travel on the wire
/// (with their assigned base offsets), `<base>.index` and `<base>.timeindex` make lookups cheap.
/// The file name is the segment's base offset, zero-padded to 20 digits.
///
/// Not Sendable: its mutable state (size, offsets, indexes) lives under the owning `PartitionLog`'s lock.
/// Reads that leave the lock take a `SegmentReader`, which holds only the immutable file and base offset.
final class LogSegment {
    public let baseOffset: Int64
    let directory: String
    /// This segment's part of its files' keys in the `FileCache`, never reused.
    let id = FileCache.newSegmentID()
    private let logFile: CachedFile
    let offsetIndex: OffsetIndex
    let timeIndex: TimeIndex
    let indexIntervalBytes: Int

    /// Bytes of whole batches in the log file.
    private(set) var size: Int
    /// The offset after the last batch (the base offset while empty).
    private(set) var nextOffset: Int64
    /// The largest record timestamp in the segment, -1 while empty.
    private(set) var maxTimestamp: Int64 = -1
    /// The base offset of the batch holding `maxTimestamp`.
    private(set) var offsetOfMaxTimestamp: Int64
    /// When the segment started taking records (ms since epoch), for time-based rolling.
    private(set) var firstAppendTime: Int64?
    private var bytesSinceIndexEntry = 0

    static func fileName(baseOffset: Int64, suffix: String) -> String {
        let digits = String(baseOffset)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + suffix
    }

    /// The three files of a segment, by suffix.
    static let fileSuffixes = [".log", ".index", ".timeindex"]
    /// With the aborted-transaction index, which only some segments have.
    static let allFileSuffixes = fileSuffixes + [TransactionIndex.suffix]

    /// Opens (or creates) the segment's files. Call `recover()` or `loadAfterCleanShutdown()` next.
    /// - Parameter stage: appended to each file name; the cleaner writes a segment as `.cleaned` files
    ///   and renames them into place (see `CleanerFiles`).
    /// - Parameter files: where the segment's files are opened and kept open while in use.
    init(
        directory: String,
        baseOffset: Int64,
        indexIntervalBytes: Int,
        stage: String = "",
        files: FileCache = .shared
    ) throws {
        self.directory = directory
        self.baseOffset = baseOffset
        self.indexIntervalBytes = indexIntervalBytes
        let id = self.id
        func file(_ kind: FileCache.FileKey.Kind, _ suffix: String) -> CachedFile {
            let path = directory + "/" + Self.fileName(baseOffset: baseOffset, suffix: suffix) + stage
            return CachedFile(cache: files, segment: id, kind: kind, path: path)
        }
        self.logFile = file(.log, ".log")
        _ = try logFile.open(create: true)
        self.offsetIndex = try OffsetIndex(file: file(.offsetIndex, ".index"), baseOffset: baseOffset)
        self.timeIndex = try TimeIndex(file: file(.timeIndex, ".timeindex"), baseOffset: baseOffset)
        self.size = 0
        self.nextOffset = baseOffset
        self.offsetOfMaxTimestamp = baseOffset
    }

    var isEmpty: Bool { size == 0 }

    /// The log file, opened through the cache if it was closed while idle.
    var log: FileDescriptor { get throws { try logFile.open() } }

    /// Closes the segment's files now (it was deleted or replaced) instead of when the cache needs room.
    func close() {
        logFile.cache.forget(segment: id)
    }

    // MARK: - Appending

    /// Appends one validated batch, rewriting its base offset and leader epoch on the way to disk. The batch
    /// buffer itself is not modified or copied: the patched first 16 bytes and the untouched rest go to
    /// the file in one vectored write.
    func append(batch: ByteBuffer, header: RecordBatchHeader, now: Int64) throws {
        let position = size
        let log = try self.log
        var prefix: (Int64, Int32, Int32) = (
            header.baseOffset.bigEndian, header.batchLength.bigEndian, header.partitionLeaderEpoch.bigEndian
        )
        let prefixSize = RecordBatchHeader.magicOffset
        try withUnsafeBytes(of: &prefix) { head in
            try batch.withUnsafeReadableBytes { bytes in
                try log.write(
                    UnsafeRawBufferPointer(rebasing: head[0..<prefixSize]),
                    UnsafeRawBufferPointer(rebasing: bytes[prefixSize..<header.totalSize]),
                    at: position
                )
            }
        }
        try didAppend(header: header, position: position, now: now)
    }

    /// Appends a batch that already has its offsets (the cleaner's output), exactly as given.
    func appendCleaned(batch: ByteBuffer, header: RecordBatchHeader) throws {
        let position = size
        let log = try self.log
        try batch.withUnsafeReadableBytes { try log.write($0, at: position) }
        try didAppend(header: header, position: position, now: nil)
    }

    /// Bookkeeping after a batch was written at `position`: size, offsets and index entries.
    private func didAppend(header: RecordBatchHeader, position: Int, now: Int64?) throws {
        if header.maxTimestamp > maxTimestamp {
            maxTimestamp = header.maxTimestamp
            offsetOfMaxTimestamp = header.baseOffset
        }
        if bytesSinceIndexEntry >= indexIntervalBytes || offsetIndex.lastEntry == nil {
            try offsetIndex.append(offset: header.baseOffset, position: position)
            try timeIndex.append(timestamp: maxTimestamp, offset: offsetOfMaxTimestamp)
            bytesSinceIndexEntry = 0
        }
        bytesSinceIndexEntry += header.totalSize
        size = position + header.totalSize
        nextOffset = header.nextOffset
        if firstAppendTime == nil { firstAppendTime = now ?? header.maxTimestamp }
    }

    /// Records the final largest timestamp in the time index: called when the segment stops being the
    /// active one and at a clean shutdown, so a later clean load finds it without a scan.
    func seal() throws {
        if maxTimestamp >= 0 { try timeIndex.append(timestamp: maxTimestamp, offset: offsetOfMaxTimestamp) }
    }

    // MARK: - Loading and recovery

    /// Trusts the files as a clean shutdown left them: size from the log, state from the indexes' tails.
    /// Falls back to a full recovery if the indexes do not fit the log.
    func loadAfterCleanShutdown() throws -> RecoveryResult {
        let logSize = try log.size()
        guard offsetIndex.isConsistent(logSize: logSize) else { return try recover() }
        // Scan only the tail after the last index entry to find the end offset and timestamp.
        let start = offsetIndex.lastEntry.map { Int($0.position) } ?? 0
        size = start
        nextOffset = offsetIndex.lastEntry.map { baseOffset + Int64($0.relativeOffset) } ?? baseOffset
        maxTimestamp = timeIndex.lastEntry?.timestamp ?? -1
        offsetOfMaxTimestamp = timeIndex.lastEntry.map { baseOffset + Int64($0.relativeOffset) } ?? baseOffset
        var position = start
        while let header = try readHeader(at: position), position + header.totalSize <= logSize {
            if header.maxTimestamp > maxTimestamp {
                maxTimestamp = header.maxTimestamp
                offsetOfMaxTimestamp = header.baseOffset
            }
            position += header.totalSize
            size = position
            nextOffset = header.nextOffset
            bytesSinceIndexEntry += header.totalSize
        }
        if size != logSize || !timeIndex.isConsistent(nextOffset: nextOffset) { return try recover() }
        if !isEmpty, let first = try readHeader(at: 0) { firstAppendTime = first.maxTimestamp }
        return RecoveryResult(validBatches: 0, truncatedBytes: 0)
    }

    /// Rebuilds the indexes by reading every batch, checking its framing and CRC, and truncates the log
    /// at the first torn or corrupt batch (and everything after it).
    func recover() throws -> RecoveryResult {
        let log = try self.log
        let logSize = try log.size()
        try offsetIndex.reset()
        try timeIndex.reset()
        size = 0
        nextOffset = baseOffset
        maxTimestamp = -1
        offsetOfMaxTimestamp = baseOffset
        firstAppendTime = nil
        bytesSinceIndexEntry = 0
        var scratch = ByteBufferAllocator().buffer(capacity: 64 * 1024)
        var batches = 0
        var expectedOffset: Int64? = nil
        while size < logSize {
            guard let header = try readHeader(at: size),
                header.magic == RecordBatchHeader.currentMagic,
                header.batchLength >= Int32(RecordBatchHeader.size - RecordBatchHeader.lengthPrefixSize),
                size + header.totalSize <= logSize,
                header.baseOffset >= (expectedOffset ?? baseOffset),
                header.lastOffsetDelta >= 0
            else { break }
            scratch.clear(minimumCapacity: header.totalSize)
            let read = try scratch.writeWithUnsafeMutableBytes(minimumWritableBytes: header.totalSize) { target in
                try log.read(into: UnsafeMutableRawBufferPointer(rebasing: target[0..<header.totalSize]), at: size)
            }
            guard read == header.totalSize else { break }
            let crc = CRC32C.checksum(
                scratch,
                at: scratch.readerIndex + RecordBatchHeader.crcCoveredOffset,
                length: header.totalSize - RecordBatchHeader.crcCoveredOffset
            )
            guard crc == header.crc else { break }
            try didAppend(header: header, position: size, now: nil)
            expectedOffset = header.nextOffset
            batches += 1
        }
        let truncated = logSize - size
        if truncated > 0 { try log.truncate(to: size) }
        return RecoveryResult(validBatches: batches, truncatedBytes: truncated)
    }

    // MARK: - Reading

    /// For reads outside the partition's lock.
    /// Holds the log file open until the read is done, whatever the cache does meanwhile.
    var reader: SegmentReader { get throws { SegmentReader(file: try log, baseOffset: baseOffset) } }

    /// Where a read of this segment for `offset` may go (under the partition's lock): the index entry to
    /// start from, one to skip ahead to within `maxBytes`, and the segment's current end.
    func readBounds(for offset: Int64, maxBytes: Int) -> SegmentReader.Bounds {
        let scanStart = offsetIndex.floorEntry(offset: offset).map { Int($0.position) } ?? 0
        return SegmentReader.Bounds(
            scanStart: scanStart,
            skipAhead: offsetIndex.floorEntry(position: scanStart + maxBytes),
            limit: size,
            segmentEnd: nextOffset
        )
    }

    func readHeader(at position: Int) throws -> RecordBatchHeader? {
        try reader.readHeader(at: position)
    }

    // MARK: - Truncation, flushing, deletion

    /// The segment's files, to fsync outside the partition's lock: its aborted-transaction index too
    /// once it has one.
    var files: [FileDescriptor] {
        get throws {
            let core = [try log, try offsetIndex.file, try timeIndex.file]
            let transactions = TransactionIndex.path(directory: directory, baseOffset: baseOffset)
            guard hasTransactionIndex, let index = try? FileDescriptor(opening: transactions, create: false) else {
                return core
            }
            return core + [index]
        }
    }

    /// Whether `<base>.txnindex` exists (set when an abort marker's entry is first written to it).
    var hasTransactionIndex = false

    func sync() throws {
        for file in try files { try file.sync() }
    }

    /// Removes a segment's files. Open descriptors (readers in flight) keep the data readable until
    /// they are released.
    static func deleteFiles(directory: String, baseOffset: Int64) {
        for suffix in allFileSuffixes {
            _ = unlinkFile(directory + "/" + fileName(baseOffset: baseOffset, suffix: suffix))
        }
    }
}

/// What a segment's recovery found.
struct RecoveryResult {
    var validBatches: Int
    var truncatedBytes: Int
}
