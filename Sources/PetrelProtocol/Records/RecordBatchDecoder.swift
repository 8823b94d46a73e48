import NIOCore

/// A record batch with its records decoded.
public struct RecordBatch: Hashable, Sendable {
    public var header: RecordBatchHeader
    public var records: [Record]
}

/// Decodes the records of stored or fetched batches (the consumer side; the broker never needs to).
public enum RecordBatchDecoder {
    /// Every whole batch in `buffer` (a Fetch response's records), skipping a partial trailing batch,
    /// which Kafka may send when a batch straddles the response size limit.
    public static func decodeBatches(_ buffer: ByteBuffer, verifyCRC: Bool = true) throws -> [RecordBatch] {
        var batches: [RecordBatch] = []
        var index = buffer.readerIndex
        while let header = RecordBatchHeader(peekingAt: index, in: buffer),
            index + header.totalSize <= buffer.writerIndex
        {
            guard header.magic == RecordBatchHeader.currentMagic else {
                throw ProtocolError(
                    .invalidValue,
                    "record batch at offset \(header.baseOffset) has magic \(header.magic)"
                )
            }
            guard header.batchLength >= RecordBatchHeader.size - RecordBatchHeader.lengthPrefixSize else {
                throw ProtocolError(.invalidLength, "batch length \(header.batchLength)")
            }
            // The offset after the batch (where a consumer fetches next) must exist.
            guard header.baseOffset >= 0, header.lastOffsetDelta >= 0,
                header.baseOffset < Int64.max - Int64(header.lastOffsetDelta)
            else {
                throw ProtocolError(
                    .invalidValue,
                    "record batch offsets \(header.baseOffset)+\(header.lastOffsetDelta) out of range"
                )
            }
            if verifyCRC {
                let crc = CRC32C.checksum(
                    buffer,
                    at: index + RecordBatchHeader.crcCoveredOffset,
                    length: header.totalSize - RecordBatchHeader.crcCoveredOffset
                )
                guard crc == header.crc else {
                    throw ProtocolError(.invalidValue, "CRC mismatch in the batch at offset \(header.baseOffset)")
                }
            }
            let body = buffer.getSlice(
                at: index + RecordBatchHeader.size,
                length: header.totalSize - RecordBatchHeader.size
            )!
            batches.append(RecordBatch(header: header, records: try decodeRecords(header: header, body: body)))
            index += header.totalSize
        }
        return batches
    }

    /// The records of one batch whose header was already read; `body` is everything after the header.
    public static func decodeRecords(header: RecordBatchHeader, body: ByteBuffer) throws -> [Record] {
        guard let codec = header.attributes.compression else {
            throw ProtocolError(.invalidValue, "unknown compression codec \(header.attributes.compressionBits)")
        }
        var plain = try Compression.decompress(body, codec: codec)
        var records: [Record] = []
        records.reserveCapacity(Int(max(0, min(header.recordCount, Int32(plain.readableBytes)))))
        for _ in 0..<max(0, header.recordCount) {
            records.append(try readRecord(from: &plain, header: header))
        }
        return records
    }

    private static func readRecord(from buffer: inout ByteBuffer, header: RecordBatchHeader) throws -> Record {
        let length = Int(try buffer.readVarint())
        guard length >= 0, var record = buffer.readSlice(length: length) else {
            throw ProtocolError.truncated("record")
        }
        _ = try record.readKafkaInteger(as: Int8.self)  // attributes: unused
        let timestampDelta = try record.readVarlong()
        let offsetDelta = try record.readVarint()
        let key = try readVarintBytes(from: &record)
        let value = try readVarintBytes(from: &record)
        let headerCount = Int(try record.readVarint())
        guard headerCount >= 0, headerCount <= record.readableBytes else {
            throw ProtocolError(.invalidLength, "\(headerCount) record headers")
        }
        var headers: [RecordHeader] = []
        headers.reserveCapacity(headerCount)
        for _ in 0..<headerCount {
            guard var keyBytes = try readVarintBytes(from: &record) else {
                throw ProtocolError(.invalidValue, "null record header key")
            }
            let headerKey = keyBytes.readString(length: keyBytes.readableBytes) ?? ""
            headers.append(RecordHeader(key: headerKey, value: try readVarintBytes(from: &record)))
        }
        // A batch from the network may carry any numbers: an offset or timestamp past Int64 is an error.
        let (offset, offsetOverflow) = header.baseOffset.addingReportingOverflow(Int64(offsetDelta))
        let (createTime, timestampOverflow) = header.baseTimestamp.addingReportingOverflow(timestampDelta)
        guard !offsetOverflow, !timestampOverflow else {
            throw ProtocolError(.invalidValue, "record offset or timestamp delta overflows its batch's base")
        }
        let timestamp = header.attributes.timestampType == .logAppendTime ? header.maxTimestamp : createTime
        return Record(offset: offset, timestamp: timestamp, key: key, value: value, headers: headers)
    }

    private static func readVarintBytes(from buffer: inout ByteBuffer) throws -> ByteBuffer? {
        let length = Int(try buffer.readVarint())
        if length < 0 { return nil }
        guard let bytes = buffer.readSlice(length: length) else { throw ProtocolError.truncated("record field") }
        return bytes
    }
}
