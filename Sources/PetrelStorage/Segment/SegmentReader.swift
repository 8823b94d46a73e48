import NIOCore
import PetrelProtocol

/// What a read needs of a segment once it has left the partition's lock: the log file and the
/// segment's base offset, both immutable. Reads stay below a size observed under the lock, so they never
/// see a batch being written.
struct SegmentReader: Sendable {
    let file: FileDescriptor
    let baseOffset: Int64

    /// Where a read of one segment may go, looked up under the partition's lock.
    struct Bounds: Sendable {
        /// An indexed batch boundary at or before the offset wanted: where the walk starts.
        var scanStart: Int
        /// An indexed batch boundary at or before `scanStart + maxBytes`, to skip ahead to; nil if none.
        var skipAhead: OffsetIndex.Entry?
        /// The segment's size and next offset when the bounds were taken.
        var limit: Int
        var segmentEnd: Int64
        /// No batch at or past this offset is read (the last stable offset of a read_committed read).
        var endOffset: Int64 = .max
    }

    /// The 61-byte header of the batch at `position`, or nil if fewer bytes than that remain.
    func readHeader(at position: Int) throws -> RecordBatchHeader? {
        var buffer = ByteBufferAllocator().buffer(capacity: RecordBatchHeader.size)
        let read = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: RecordBatchHeader.size) { target in
            try file.read(
                into: UnsafeMutableRawBufferPointer(rebasing: target[0..<RecordBatchHeader.size]),
                at: position
            )
        }
        guard read == RecordBatchHeader.size else { return nil }
        return RecordBatchHeader(peekingAt: 0, in: buffer)
    }

    /// Reads `length` bytes at `position` into a new buffer (for paths that cannot use sendfile).
    func read(position: Int, length: Int) throws -> ByteBuffer {
        try Self.read(file, position: position, length: length)
    }

    static func read(_ file: FileDescriptor, position: Int, length: Int) throws -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: length)
        _ = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { target in
            try file.read(into: UnsafeMutableRawBufferPointer(rebasing: target[0..<length]), at: position)
        }
        return buffer
    }

    /// The whole batches from the one holding `offset`, up to `maxBytes` (with `minOneBatch`, at least
    /// that first batch however large). Walks at most one index interval to the first batch, then skips
    /// ahead by the index and walks at most two intervals to the end. Nil if there is nothing to serve.
    func slice(from offset: Int64, within bounds: Bounds, maxBytes: Int, minOneBatch: Bool) throws -> LogSlice? {
        var position = bounds.scanStart
        var first: RecordBatchHeader?
        while position < bounds.limit, let header = try readHeader(at: position) {
            if header.lastOffset >= offset {
                first = header
                break
            }
            position += header.totalSize
        }
        // None: only if segments are not contiguous (a damaged folder); serve nothing rather than guess.
        guard let first, first.baseOffset < bounds.endOffset, minOneBatch || first.totalSize <= maxBytes else {
            return nil
        }
        let target = position + max(maxBytes, first.totalSize)
        var stop = bounds.limit
        var sliceEnd = bounds.segmentEnd
        if target < bounds.limit || bounds.endOffset < bounds.segmentEnd {
            var cursor = position + first.totalSize
            sliceEnd = first.nextOffset
            if let entry = bounds.skipAhead, Int(entry.position) > cursor, Int(entry.position) <= target,
                baseOffset + Int64(entry.relativeOffset) <= bounds.endOffset
            {
                // The batches before the indexed one are whole and end where it begins.
                cursor = Int(entry.position)
                sliceEnd = baseOffset + Int64(entry.relativeOffset)
            }
            stop = cursor
            while cursor < bounds.limit, let header = try readHeader(at: cursor) {
                if cursor + header.totalSize > target || header.baseOffset >= bounds.endOffset { break }
                cursor += header.totalSize
                stop = cursor
                sliceEnd = header.nextOffset
            }
        }
        return LogSlice(
            file: file,
            position: position,
            length: stop - position,
            firstOffset: first.baseOffset,
            nextOffset: sliceEnd
        )
    }
}

/// A run of whole batches in one segment file. It holds the file itself, reference-counted: the
/// descriptor stays open (and the bytes readable, even if retention deletes the segment meanwhile) until
/// the last slice of it is gone, so a send in flight never reads a descriptor closed or reused.
public struct LogSlice: Sendable {
    let file: FileDescriptor
    public let position: Int
    public let length: Int
    /// The base offset of the first batch in the slice.
    public let firstOffset: Int64
    /// The offset after the last batch in the slice.
    public let nextOffset: Int64

    /// Copies the bytes into memory (tests, and transports that cannot send from a file).
    public func readBytes() throws -> ByteBuffer {
        try SegmentReader.read(file, position: position, length: length)
    }

    /// A new descriptor of the segment file for the caller to own and close (for sendfile).
    public func duplicateFileDescriptor() throws -> Int32 {
        try file.duplicate()
    }
}
