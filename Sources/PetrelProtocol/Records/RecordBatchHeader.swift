import NIOCore

/// The 61-byte header of a record batch (magic 2), the unit the broker stores and serves.
///
///     offset size field
///      0     8    baseOffset            (the broker assigns it on append)
///      8     4    batchLength           (bytes after this field)
///     12     4    partitionLeaderEpoch  (the broker stamps it on append)
///     16     1    magic = 2
///     17     4    crc                   CRC-32C of bytes 21 ..< end
///     21     2    attributes            compression, timestamp type, transactional, control
///     23     4    lastOffsetDelta
///     27     8    baseTimestamp
///     35     8    maxTimestamp
///     43     8    producerId
///     51     2    producerEpoch
///     53     4    baseSequence
///     57     4    recordCount
///     61     …    records (one compressed blob when compressed)
public struct RecordBatchHeader: Hashable, Sendable {
    public static let size = 61
    /// Bytes in front of and including the length field: a batch occupies `batchLength + 12` bytes.
    public static let lengthPrefixSize = 12
    public static let magicOffset = 16
    public static let crcOffset = 17
    /// The CRC covers everything from the attributes on.
    public static let crcCoveredOffset = 21
    public static let partitionLeaderEpochOffset = 12
    public static let baseTimestampOffset = 27
    public static let maxTimestampOffset = 35
    public static let currentMagic: Int8 = 2

    public var baseOffset: Int64
    public var batchLength: Int32
    public var partitionLeaderEpoch: Int32
    public var magic: Int8
    public var crc: UInt32
    public var attributes: RecordBatchAttributes
    public var lastOffsetDelta: Int32
    public var baseTimestamp: Int64
    public var maxTimestamp: Int64
    public var producerID: Int64
    public var producerEpoch: Int16
    public var baseSequence: Int32
    public var recordCount: Int32

    public init(
        baseOffset: Int64 = 0,
        batchLength: Int32 = 0,
        partitionLeaderEpoch: Int32 = -1,
        magic: Int8 = RecordBatchHeader.currentMagic,
        crc: UInt32 = 0,
        attributes: RecordBatchAttributes = RecordBatchAttributes(),
        lastOffsetDelta: Int32 = 0,
        baseTimestamp: Int64 = 0,
        maxTimestamp: Int64 = 0,
        producerID: Int64 = -1,
        producerEpoch: Int16 = -1,
        baseSequence: Int32 = -1,
        recordCount: Int32 = 0
    ) {
        self.baseOffset = baseOffset
        self.batchLength = batchLength
        self.partitionLeaderEpoch = partitionLeaderEpoch
        self.magic = magic
        self.crc = crc
        self.attributes = attributes
        self.lastOffsetDelta = lastOffsetDelta
        self.baseTimestamp = baseTimestamp
        self.maxTimestamp = maxTimestamp
        self.producerID = producerID
        self.producerEpoch = producerEpoch
        self.baseSequence = baseSequence
        self.recordCount = recordCount
    }

    /// Reads a header at `index` without moving the reader index. Nil if fewer than 61 bytes are there.
    public init?(peekingAt index: Int, in buffer: ByteBuffer) {
        guard index >= buffer.readerIndex, index + Self.size <= buffer.writerIndex,
            let baseOffset = buffer.getInteger(at: index, as: Int64.self),
            let batchLength = buffer.getInteger(at: index + 8, as: Int32.self),
            let epoch = buffer.getInteger(at: index + 12, as: Int32.self),
            let magic = buffer.getInteger(at: index + 16, as: Int8.self),
            let crc = buffer.getInteger(at: index + 17, as: UInt32.self),
            let attributes = buffer.getInteger(at: index + 21, as: Int16.self),
            let lastOffsetDelta = buffer.getInteger(at: index + 23, as: Int32.self),
            let baseTimestamp = buffer.getInteger(at: index + 27, as: Int64.self),
            let maxTimestamp = buffer.getInteger(at: index + 35, as: Int64.self),
            let producerID = buffer.getInteger(at: index + 43, as: Int64.self),
            let producerEpoch = buffer.getInteger(at: index + 51, as: Int16.self),
            let baseSequence = buffer.getInteger(at: index + 53, as: Int32.self),
            let recordCount = buffer.getInteger(at: index + 57, as: Int32.self)
        else { return nil }
        self.init(
            baseOffset: baseOffset,
            batchLength: batchLength,
            partitionLeaderEpoch: epoch,
            magic: magic,
            crc: crc,
            attributes: RecordBatchAttributes(rawValue: attributes),
            lastOffsetDelta: lastOffsetDelta,
            baseTimestamp: baseTimestamp,
            maxTimestamp: maxTimestamp,
            producerID: producerID,
            producerEpoch: producerEpoch,
            baseSequence: baseSequence,
            recordCount: recordCount
        )
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(baseOffset)
        buffer.writeInteger(batchLength)
        buffer.writeInteger(partitionLeaderEpoch)
        buffer.writeInteger(magic)
        buffer.writeInteger(crc)
        buffer.writeInteger(attributes.rawValue)
        buffer.writeInteger(lastOffsetDelta)
        buffer.writeInteger(baseTimestamp)
        buffer.writeInteger(maxTimestamp)
        buffer.writeInteger(producerID)
        buffer.writeInteger(producerEpoch)
        buffer.writeInteger(baseSequence)
        buffer.writeInteger(recordCount)
    }

    /// A whole batch: this header (its batch length set for `payload`, its CRC computed) and `payload`
    /// (the records, compressed if the attributes say so).
    public func sealing(_ payload: ByteBuffer) -> ByteBuffer {
        var header = self
        header.batchLength = Int32(Self.size - Self.lengthPrefixSize + payload.readableBytes)
        header.crc = 0
        var batch = ByteBufferAllocator().buffer(capacity: Self.size + payload.readableBytes)
        header.write(to: &batch)
        batch.writeImmutableBuffer(payload)
        let crc = CRC32C.checksum(
            batch,
            at: batch.readerIndex + Self.crcCoveredOffset,
            length: batch.readableBytes - Self.crcCoveredOffset
        )
        batch.setInteger(crc, at: batch.readerIndex + Self.crcOffset)
        return batch
    }

    /// Bytes the whole batch occupies.
    public var totalSize: Int { Int(batchLength) + Self.lengthPrefixSize }
    public var lastOffset: Int64 { baseOffset + Int64(lastOffsetDelta) }
    /// The next offset after this batch.
    public var nextOffset: Int64 { lastOffset + 1 }
    /// The sequence number of the last record (sequences wrap from Int32.max to 0).
    public var lastSequence: Int32 {
        baseSequence < 0
            ? -1 : Int32(truncatingIfNeeded: (Int64(baseSequence) + Int64(lastOffsetDelta)) % (Int64(Int32.max) + 1))
    }
    public var isIdempotent: Bool { producerID >= 0 }
}

/// The attributes field of a record batch.
public struct RecordBatchAttributes: Hashable, Sendable {
    public var rawValue: Int16

    public init(rawValue: Int16 = 0) {
        self.rawValue = rawValue
    }

    public init(compression: CompressionCodec, timestampType: TimestampType = .createTime) {
        self.rawValue = Int16(compression.rawValue) | (timestampType == .logAppendTime ? 0x08 : 0)
    }

    /// The codec bits (0–2). 5–7 are not codecs.
    public var compressionBits: Int16 { rawValue & 0x07 }
    public var compression: CompressionCodec? { CompressionCodec(rawValue: Int8(compressionBits)) }
    public var timestampType: TimestampType { rawValue & 0x08 != 0 ? .logAppendTime : .createTime }
    public var isTransactional: Bool { rawValue & 0x10 != 0 }
    public var isControl: Bool { rawValue & 0x20 != 0 }
    /// The log cleaner has stamped the batch: its base timestamp is the time after which its tombstones
    /// may be removed, and its records' timestamp deltas are relative to that (KIP-534).
    public var hasDeleteHorizon: Bool {
        get { rawValue & 0x40 != 0 }
        set { rawValue = newValue ? rawValue | 0x40 : rawValue & ~0x40 }
    }
    /// The same attributes with another codec.
    public func with(compression codec: CompressionCodec) -> RecordBatchAttributes {
        RecordBatchAttributes(rawValue: (rawValue & ~0x07) | Int16(codec.rawValue))
    }
}

public enum TimestampType: Sendable, Hashable {
    case createTime
    case logAppendTime
}

/// The compression codecs of record batches (attributes bits 0–2).
public enum CompressionCodec: Int8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case none = 0
    case gzip = 1
    case snappy = 2
    case lz4 = 3
    case zstd = 4

    public var description: String {
        switch self {
        case .none: "none"
        case .gzip: "gzip"
        case .snappy: "snappy"
        case .lz4: "lz4"
        case .zstd: "zstd"
        }
    }
}
