import NIOCore

/// Builds one record batch (magic 2) from records, as a producer does.
public struct RecordBatchBuilder: Sendable {
    public var compression: CompressionCodec
    public var producerID: Int64
    public var producerEpoch: Int16
    public var baseSequence: Int32
    /// The batch belongs to its producer's open transaction (attribute bit 4).
    public var isTransactional: Bool
    private var body: ByteBuffer
    private var count: Int32 = 0
    private var baseTimestamp: Int64?
    private var maxTimestamp: Int64 = -1

    public init(
        compression: CompressionCodec = .none,
        producerID: Int64 = -1,
        producerEpoch: Int16 = -1,
        baseSequence: Int32 = -1,
        isTransactional: Bool = false,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) {
        self.compression = compression
        self.producerID = producerID
        self.producerEpoch = producerEpoch
        self.baseSequence = baseSequence
        self.isTransactional = isTransactional
        self.body = allocator.buffer(capacity: 1024)
    }

    public var recordCount: Int { Int(count) }
    public var isEmpty: Bool { count == 0 }
    /// Bytes of uncompressed records so far (for batch-size limits).
    public var uncompressedBytes: Int { body.readableBytes + RecordBatchHeader.size }

    public mutating func append(
        key: ByteBuffer?,
        value: ByteBuffer?,
        headers: [RecordHeader] = [],
        timestamp: Int64
    ) {
        let base = baseTimestamp ?? timestamp
        if baseTimestamp == nil { baseTimestamp = timestamp }
        maxTimestamp = max(maxTimestamp, timestamp)
        let timestampDelta = timestamp - base
        let offsetDelta = count
        var size = 1 + Varint.size(of: timestampDelta) + Varint.size(of: offsetDelta)
        size += Self.bytesFieldSize(key) + Self.bytesFieldSize(value) + Varint.size(of: Int32(headers.count))
        for header in headers {
            size +=
                Varint.size(of: Int32(header.key.utf8.count)) + header.key.utf8.count
                + Self.bytesFieldSize(header.value)
        }
        body.writeVarint(Int32(size))
        body.writeInteger(Int8(0))
        body.writeVarlong(timestampDelta)
        body.writeVarint(offsetDelta)
        Self.writeBytesField(key, to: &body)
        Self.writeBytesField(value, to: &body)
        body.writeVarint(Int32(headers.count))
        for header in headers {
            body.writeVarint(Int32(header.key.utf8.count))
            body.writeString(header.key)
            Self.writeBytesField(header.value, to: &body)
        }
        count += 1
    }

    /// The finished batch with base offset 0 (the broker assigns the real one) and a valid CRC.
    public func build() throws -> ByteBuffer {
        let payload = try Compression.compress(body, codec: compression)
        let header = RecordBatchHeader(
            partitionLeaderEpoch: -1,
            attributes: RecordBatchAttributes(
                rawValue: RecordBatchAttributes(compression: compression).rawValue | (isTransactional ? 0x10 : 0)
            ),
            lastOffsetDelta: count - 1,
            baseTimestamp: baseTimestamp ?? -1,
            maxTimestamp: maxTimestamp,
            producerID: producerID,
            producerEpoch: producerEpoch,
            baseSequence: baseSequence,
            recordCount: count
        )
        return header.sealing(payload)
    }

    private static func bytesFieldSize(_ bytes: ByteBuffer?) -> Int {
        guard let bytes else { return Varint.size(of: Int32(-1)) }
        return Varint.size(of: Int32(bytes.readableBytes)) + bytes.readableBytes
    }

    private static func writeBytesField(_ bytes: ByteBuffer?, to buffer: inout ByteBuffer) {
        guard let bytes else {
            buffer.writeVarint(-1)
            return
        }
        buffer.writeVarint(Int32(bytes.readableBytes))
        buffer.writeImmutableBuffer(bytes)
    }
}
