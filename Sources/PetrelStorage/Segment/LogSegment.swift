import NIOCore
import PetrelProtocol

/// One segment of a partition: `<base>.log` holds record batches exactly as they travel on the wire
/// (with their assigned base offsets), `<base>.index` and `<base>.timeindex` make lookups cheap.
/// The file name is the segment's base offset, zero-padded to 20 digits.
///
/// Thread-safety: the mutable state (size, offsets, indexes) is read and written only under the owning
/// `PartitionLog`'s lock. The log file is read with positional reads, so readers outside the lock may
/// read any range below a size they observed under the lock.
public final class LogSegment: @unchecked Sendable {
    public let baseOffset: Int64
    let directory: String
    let log: FileDescriptor
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

    /// Opens (or creates) the segment's files. Call `recover()` or `loadAfterCleanShutdown()` next.
    init(directory: String, baseOffset: Int64, indexIntervalBytes: Int) throws {
        self.directory = directory
        self.baseOffset = baseOffset
        self.indexIntervalBytes = indexIntervalBytes
        self.log = try FileDescriptor(opening: directory + "/" + Self.fileName(baseOffset: baseOffset, suffix: ".log"))
        self.offsetIndex = try OffsetIndex(
            path: directory + "/" + Self.fileName(baseOffset: baseOffset, suffix: ".index"),
            baseOffset: baseOffset
        )
        self.timeIndex = try TimeIndex(
            path: directory + "/" + Self.fileName(baseOffset: baseOffset, suffix: ".timeindex"),
            baseOffset: baseOffset
        )
        self.size = 0
        self.nextOffset = baseOffset
        self.offsetOfMaxTimestamp = baseOffset
    }

    var isEmpty: Bool { size == 0 }

    // MARK: - Appending

    /// Appends one validated batch, rewriting its base offset and leader epoch on the way to disk. The batch
    /// buffer itself is not modified or copied: the patched first 16 bytes and the untouched rest go to
    /// the file in one vectored write.
    func append(batch: ByteBuffer, header: RecordBatchHeader, now: Int64) throws {
        let position = size
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

    /// The 61-byte header of the batch at `position`, or nil if fewer bytes than that remain.
    func readHeader(at position: Int) throws -> RecordBatchHeader? {
        var buffer = ByteBufferAllocator().buffer(capacity: RecordBatchHeader.size)
        let read = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: RecordBatchHeader.size) { target in
            try log.read(
                into: UnsafeMutableRawBufferPointer(rebasing: target[0..<RecordBatchHeader.size]),
                at: position
            )
        }
        guard read == RecordBatchHeader.size else { return nil }
        return RecordBatchHeader(peekingAt: 0, in: buffer)
    }

    /// The position of the batch that contains `offset`, scanning forward from the nearest index entry
    /// (at most one index interval), or nil if the segment ends first. `limit` is a size observed under
    /// the log's lock.
    func position(of offset: Int64, limit: Int) throws -> (position: Int, header: RecordBatchHeader)? {
        var position = offsetIndex.floorEntry(offset: offset).map { Int($0.position) } ?? 0
        while position < limit, let header = try readHeader(at: position) {
            if header.lastOffset >= offset { return (position, header) }
            position += header.totalSize
        }
        return nil
    }

    /// The end of the whole batches that fit in `maxBytes` from `start` (at least the first batch, so a
    /// batch larger than the limit is still served), without passing `limit`.
    func endOfBatches(from start: Int, firstBatchSize: Int, maxBytes: Int, limit: Int) throws -> Int {
        let target = start + max(maxBytes, firstBatchSize)
        if target >= limit { return limit }
        // Jump to the last indexed batch at or before the target, then walk at most one interval.
        var position = max(
            start + firstBatchSize,
            offsetIndex.floorEntry(position: target).map { Int($0.position) } ?? 0
        )
        var end = position
        while position < limit, let header = try readHeader(at: position) {
            if position + header.totalSize > target { break }
            position += header.totalSize
            end = position
        }
        return end
    }

    /// Reads `length` bytes at `position` into a new buffer (for tests and paths that cannot use sendfile).
    func read(position: Int, length: Int) throws -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: length)
        _ = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { target in
            try log.read(into: UnsafeMutableRawBufferPointer(rebasing: target[0..<length]), at: position)
        }
        return buffer
    }

    // MARK: - Truncation, flushing, deletion

    /// Cuts the segment back to the batches before `offset` (used when recovery or a caller asks for it).
    func truncate(toOffset offset: Int64) throws {
        guard offset < nextOffset else { return }
        guard let (position, _) = try position(of: offset, limit: size) else { return }
        try log.truncate(to: position)
        try offsetIndex.truncate(toPosition: position)
        try timeIndex.truncate(toOffset: offset)
        _ = try recover()
    }

    func sync() throws {
        try log.sync()
        try offsetIndex.file.sync()
        try timeIndex.file.sync()
    }

    /// Removes the segment's files. Open descriptors (readers in flight) keep the data readable until
    /// they are released.
    func deleteFiles() {
        for suffix in [".log", ".index", ".timeindex"] {
            _ = unlinkFile(directory + "/" + Self.fileName(baseOffset: baseOffset, suffix: suffix))
        }
    }
}

/// What a segment's recovery found.
struct RecoveryResult {
    var validBatches: Int
    var truncatedBytes: Int
}
