import NIOCore
import PetrelProtocol

/// One record of a stored batch as the cleaner sees it: what it decides on (offset, key, whether it is
/// a tombstone) and the stored bytes it needs to write the record again, as slices of the batch.
struct StoredRecord {
    var offset: Int64
    var timestamp: Int64
    /// Nil for a record without a key.
    var key: ByteBuffer?
    /// A null value: the record deletes its key.
    var isTombstone: Bool
    var attributes: Int8
    var offsetDelta: Int32
    /// The key, value and headers as stored: copied unchanged when the record is written again.
    var tail: ByteBuffer
}

/// A batch read whole from a segment file.
struct StoredBatch {
    var header: RecordBatchHeader
    /// The batch's bytes as stored, header included.
    var bytes: ByteBuffer

    /// Reads the batch at `position` of `reader`'s file, or nil past the end.
    static func read(from reader: SegmentReader, at position: Int, limit: Int) throws -> StoredBatch? {
        guard position < limit, let header = try reader.readHeader(at: position),
            position + header.totalSize <= limit
        else { return nil }
        return StoredBatch(header: header, bytes: try reader.read(position: position, length: header.totalSize))
    }

    /// The batch's records, decompressed if need be. A control batch's records are not data and are
    /// reported as none.
    func records() throws -> [StoredRecord] {
        guard !header.attributes.isControl, header.recordCount > 0 else { return [] }
        guard let codec = header.attributes.compression else {
            throw StorageError(
                "clean",
                path: "batch \(header.baseOffset)",
                reason: "unknown compression codec \(header.attributes.compressionBits)"
            )
        }
        let payload = bytes.getSlice(
            at: bytes.readerIndex + RecordBatchHeader.size,
            length: header.totalSize - RecordBatchHeader.size
        )!
        var body = try Compression.decompress(payload, codec: codec)
        var records: [StoredRecord] = []
        records.reserveCapacity(Int(header.recordCount))
        for _ in 0..<header.recordCount {
            let length = Int(try body.readVarint())
            guard length > 0, var record = body.readSlice(length: length) else {
                throw StorageError("clean", path: "batch \(header.baseOffset)", reason: "a record is cut short")
            }
            let attributes = try record.readKafkaInteger(as: Int8.self)
            let timestampDelta = try record.readVarlong()
            let offsetDelta = try record.readVarint()
            let tail = record
            let keyLength = Int(try record.readVarint())
            let key = keyLength < 0 ? nil : record.readSlice(length: keyLength)
            if keyLength >= 0 && key == nil {
                throw StorageError("clean", path: "batch \(header.baseOffset)", reason: "a record key is cut short")
            }
            let valueLength = try record.readVarint()
            let timestamp =
                header.attributes.timestampType == .logAppendTime
                ? header.maxTimestamp : header.baseTimestamp &+ timestampDelta
            records.append(
                StoredRecord(
                    offset: header.baseOffset + Int64(offsetDelta),
                    timestamp: timestamp,
                    key: key,
                    isTombstone: valueLength < 0,
                    attributes: attributes,
                    offsetDelta: offsetDelta,
                    tail: tail
                )
            )
        }
        return records
    }
}

extension StoredBatch {
    /// Calls `body` with each keyed record's key and offset, in place: no record values, no copies
    /// (the key map's pass reads every record of the dirty log). `body` returns false to stop early;
    /// so does this. A control batch has no keys.
    func forEachKey(_ body: (UnsafeRawBufferPointer, Int64) -> Bool) throws -> Bool {
        guard !header.attributes.isControl, header.recordCount > 0 else { return true }
        guard let codec = header.attributes.compression else {
            throw StorageError("clean", path: "batch \(header.baseOffset)", reason: "unknown compression codec")
        }
        let payload = bytes.getSlice(
            at: bytes.readerIndex + RecordBatchHeader.size,
            length: header.totalSize - RecordBatchHeader.size
        )!
        let plain = try Compression.decompress(payload, codec: codec)
        return try plain.withUnsafeReadableBytes { raw in
            var reader = RawVarintReader(bytes: raw)
            for _ in 0..<header.recordCount {
                let length = try reader.varint()
                let end = reader.position + Int(length)
                guard length > 0, end <= raw.count else {
                    throw StorageError("clean", path: "batch \(header.baseOffset)", reason: "a record is cut short")
                }
                reader.position += 1  // attributes
                _ = try reader.varint()  // timestamp delta
                let offsetDelta = try reader.varint()
                let keyLength = try reader.varint()
                if keyLength >= 0 {
                    guard reader.position + Int(keyLength) <= end else {
                        throw StorageError("clean", path: "batch \(header.baseOffset)", reason: "a key is cut short")
                    }
                    let key = UnsafeRawBufferPointer(
                        rebasing: raw[reader.position..<(reader.position + Int(keyLength))]
                    )
                    if !body(key, header.baseOffset + offsetDelta) { return false }
                }
                reader.position = end
            }
            return true
        }
    }
}
