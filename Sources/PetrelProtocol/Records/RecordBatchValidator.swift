import NIOCore

/// Why a produced batch was refused: the Kafka error code to answer with and a sentence for the log.
public struct RecordBatchError: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String

    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.name): \(message)" }
}

/// Checks the batch a producer sent before anything is written. Reads only the 61-byte header and
/// checksums the rest in place: the records are not parsed on this path.
public enum RecordBatchValidator {
    /// Validates the `records` of one partition of a Produce request (v3+: exactly one magic-2 batch).
    /// A compressed batch is decompressed to check that it holds the records its header announces;
    /// zstd needs Produce v7 or later (`allowZstd`). With `requireKeys` (a compacted topic) every record
    /// must have a key, and the records are walked to check it.
    public static func validateProduced(
        _ records: ByteBuffer,
        maxBatchBytes: Int = .max,
        allowZstd: Bool = true,
        requireKeys: Bool = false
    ) throws(RecordBatchError) -> RecordBatchHeader {
        let start = records.readerIndex
        guard records.readableBytes > RecordBatchHeader.magicOffset,
            let magic = records.getInteger(at: start + RecordBatchHeader.magicOffset, as: Int8.self)
        else {
            throw RecordBatchError(
                .corruptMessage,
                "record set of \(records.readableBytes) bytes is shorter than a batch header"
            )
        }
        guard magic == RecordBatchHeader.currentMagic else {
            throw RecordBatchError(
                .unsupportedForMessageFormat,
                "message format v\(magic) is not accepted; send record batch v2"
            )
        }
        guard let header = RecordBatchHeader(peekingAt: start, in: records) else {
            throw RecordBatchError(
                .corruptMessage,
                "record batch of \(records.readableBytes) bytes is shorter than its 61-byte header"
            )
        }
        guard header.batchLength >= RecordBatchHeader.size - RecordBatchHeader.lengthPrefixSize else {
            throw RecordBatchError(.corruptMessage, "batch length \(header.batchLength) is below the header size")
        }
        if header.totalSize > records.readableBytes {
            throw RecordBatchError(
                .corruptMessage,
                "batch length \(header.batchLength) runs past the \(records.readableBytes) bytes sent"
            )
        }
        if header.totalSize < records.readableBytes {
            throw RecordBatchError(
                .invalidRecord,
                "a produce request must carry exactly one record batch per partition"
            )
        }
        if header.totalSize > maxBatchBytes {
            throw RecordBatchError(
                .messageTooLarge,
                "batch of \(header.totalSize) bytes exceeds the limit of \(maxBatchBytes)"
            )
        }
        let crc = CRC32C.checksum(
            records,
            at: start + RecordBatchHeader.crcCoveredOffset,
            length: header.totalSize - RecordBatchHeader.crcCoveredOffset
        )
        guard crc == header.crc else {
            throw RecordBatchError(
                .corruptMessage,
                "CRC-32C mismatch: batch says \(hex(header.crc)), bytes give \(hex(crc))"
            )
        }
        try checkHeaderFields(header)
        let codec = header.attributes.compression ?? .none
        if codec != .none || requireKeys {
            if codec == .zstd && !allowZstd {
                throw RecordBatchError(.unsupportedCompressionType, "zstd needs Produce v7 or later")
            }
            let payload = records.getSlice(
                at: start + RecordBatchHeader.size,
                length: header.totalSize - RecordBatchHeader.size
            )!
            let plain: ByteBuffer
            do {
                plain = try Compression.decompress(payload, codec: codec)
            } catch {
                throw RecordBatchError(.corruptMessage, "\(error)")
            }
            try checkRecords(plain, count: Int(header.recordCount), requireKeys: requireKeys)
        }
        return header
    }

    /// Walks the records of a (decompressed) batch body: exactly `count` well-framed records whose
    /// offset deltas run 0, 1, 2, ..., and nothing after them; with `requireKeys`, each with a key.
    static func checkRecords(_ body: ByteBuffer, count: Int, requireKeys: Bool = false) throws(RecordBatchError) {
        var body = body
        for expected in 0..<count {
            do {
                let length = Int(try body.readVarint())
                guard length > 0, var record = body.readSlice(length: length) else {
                    throw RecordBatchError(.corruptMessage, "record \(expected) is cut short")
                }
                _ = try record.readKafkaInteger(as: Int8.self)
                _ = try record.readVarlong()
                let delta = try record.readVarint()
                guard delta == expected else {
                    throw RecordBatchError(.invalidRecord, "record \(expected) has offset delta \(delta)")
                }
                if requireKeys, try record.readVarint() < 0 {
                    throw RecordBatchError(
                        .invalidRecord,
                        "a compacted topic (cleanup.policy=compact) cannot accept a record without a key"
                    )
                }
            } catch let error as RecordBatchError {
                throw error
            } catch {
                throw RecordBatchError(.corruptMessage, "record \(expected) is malformed: \(error)")
            }
        }
        guard body.readableBytes == 0 else {
            throw RecordBatchError(.corruptMessage, "\(body.readableBytes) bytes follow the batch's \(count) records")
        }
    }

    /// Field rules Kafka applies to client batches.
    static func checkHeaderFields(_ header: RecordBatchHeader) throws(RecordBatchError) {
        guard header.recordCount > 0, header.lastOffsetDelta == header.recordCount - 1 else {
            throw RecordBatchError(
                .invalidRecord,
                "record count \(header.recordCount) does not match last offset delta \(header.lastOffsetDelta)"
            )
        }
        guard header.attributes.compression != nil else {
            throw RecordBatchError(
                .unsupportedCompressionType,
                "unknown compression codec \(header.attributes.compressionBits)"
            )
        }
        if header.attributes.isControl {
            throw RecordBatchError(.invalidRecord, "clients may not send control batches")
        }
        if header.attributes.isTransactional && header.producerID < 0 {
            throw RecordBatchError(.invalidRecord, "a transactional batch must carry a producer id")
        }
        if header.producerID >= 0 && header.baseSequence < 0 {
            throw RecordBatchError(
                .invalidRecord,
                "idempotent batch of producer \(header.producerID) has no sequence number"
            )
        }
    }

    private static func hex(_ value: UInt32) -> String {
        "0x" + String(value, radix: 16, uppercase: true)
    }
}
