import NIOCore

/// `<base>.txnindex`, Kafka's aborted-transaction index of a segment: one 34-byte entry per transaction
/// whose abort marker is in the segment, appended when the marker is written:
///
///     int16 version = 0, int64 producer id, int64 first offset, int64 last offset, int64 last stable offset
///
/// Created with the first entry; most segments never have one.
enum TransactionIndex {
    static let suffix = ".txnindex"
    static let entrySize = 34

    static func path(directory: String, baseOffset: Int64) -> String {
        directory + "/" + LogSegment.fileName(baseOffset: baseOffset, suffix: suffix)
    }

    static func encode(_ entries: [AbortedTransaction]) -> ByteBuffer {
        var buffer = ByteBuffer()
        for entry in entries {
            buffer.writeInteger(Int16(0))
            buffer.writeInteger(entry.producerID)
            buffer.writeInteger(entry.firstOffset)
            buffer.writeInteger(entry.lastOffset)
            buffer.writeInteger(entry.lastStableOffset)
        }
        return buffer
    }

    /// Appends entries to the segment's index, creating it if need be.
    static func append(_ entries: [AbortedTransaction], directory: String, baseOffset: Int64) throws {
        let file = try FileDescriptor(opening: path(directory: directory, baseOffset: baseOffset))
        let bytes = encode(entries)
        let size = try file.size()
        // A torn entry at the end (a crash mid-write) is overwritten.
        let position = size - size % entrySize
        try bytes.withUnsafeReadableBytes { try file.write($0, at: position) }
    }

    /// Replaces the segment's index with `entries` (removing it if there are none).
    static func rewrite(_ entries: [AbortedTransaction], directory: String, baseOffset: Int64) throws {
        let target = path(directory: directory, baseOffset: baseOffset)
        if entries.isEmpty {
            unlinkFile(target)
        } else {
            try writeAtomically(Array(encode(entries).readableBytesView), to: target)
        }
    }

    /// The entries of the segment's index (none if it has no index); a torn last entry is ignored.
    static func read(directory: String, baseOffset: Int64) throws -> [AbortedTransaction] {
        let target = path(directory: directory, baseOffset: baseOffset)
        guard let file = try? FileDescriptor(opening: target, create: false, readOnly: true) else { return [] }
        let size = try file.size()
        let buffer = try SegmentReader.read(file, position: 0, length: size - size % entrySize)
        var entries: [AbortedTransaction] = []
        var index = buffer.readerIndex
        while index + entrySize <= buffer.writerIndex {
            entries.append(
                AbortedTransaction(
                    producerID: buffer.getInteger(at: index + 2)!,
                    firstOffset: buffer.getInteger(at: index + 10)!,
                    lastOffset: buffer.getInteger(at: index + 18)!,
                    lastStableOffset: buffer.getInteger(at: index + 26)!
                )
            )
            index += entrySize
        }
        return entries
    }
}
