import NIOCore

/// The end of a transaction in one partition: a control batch (attributes: transactional and control)
/// with the transaction's producer id and epoch, base sequence -1 and one record whose
///
///     key   = int16 version 0, int16 type (0 abort, 1 commit)
///     value = int16 version 0, int32 coordinator epoch
///
/// Control records take an offset like any other; consumers never hand them to the application.
public struct ControlRecord: Hashable, Sendable {
    public enum Kind: Int16, Hashable, Sendable {
        case abort = 0
        case commit = 1
    }

    public var kind: Kind
    public var coordinatorEpoch: Int32

    public init(kind: Kind, coordinatorEpoch: Int32 = 0) {
        self.kind = kind
        self.coordinatorEpoch = coordinatorEpoch
    }

    /// The attributes of a marker batch: transactional (bit 4) and control (bit 5), uncompressed.
    public static let batchAttributes = RecordBatchAttributes(rawValue: 0x30)

    /// A marker batch (base offset 0; the log assigns the real one) with a valid CRC.
    public func batch(producerID: Int64, producerEpoch: Int16, timestamp: Int64) -> ByteBuffer {
        var record = ByteBuffer()
        record.writeInteger(Int8(0))  // attributes
        record.writeVarlong(0)  // timestamp delta
        record.writeVarint(0)  // offset delta
        record.writeVarint(4)
        record.writeInteger(Int16(0))
        record.writeInteger(kind.rawValue)
        record.writeVarint(6)
        record.writeInteger(Int16(0))
        record.writeInteger(coordinatorEpoch)
        record.writeVarint(0)  // headers
        var body = ByteBuffer()
        body.writeVarint(Int32(record.readableBytes))
        body.writeImmutableBuffer(record)
        let header = RecordBatchHeader(
            partitionLeaderEpoch: -1,
            attributes: Self.batchAttributes,
            lastOffsetDelta: 0,
            baseTimestamp: timestamp,
            maxTimestamp: timestamp,
            producerID: producerID,
            producerEpoch: producerEpoch,
            baseSequence: -1,
            recordCount: 1
        )
        return header.sealing(body)
    }

    /// The marker a control batch carries (`body` is everything after its 61-byte header), or nil if it
    /// is not a marker this broker knows.
    public static func read(body: ByteBuffer) -> ControlRecord? {
        var body = body
        guard let length = try? body.readVarint(), var record = body.readSlice(length: Int(length)),
            (try? record.readKafkaInteger(as: Int8.self)) != nil,
            (try? record.readVarlong()) != nil,
            (try? record.readVarint()) != nil,
            let keyLength = try? record.readVarint(), keyLength >= 4,
            let key = record.readSlice(length: Int(keyLength)),
            let kindValue = key.getInteger(at: key.readerIndex + 2, as: Int16.self).flatMap(Kind.init(rawValue:))
        else { return nil }
        var epoch: Int32 = 0
        if let valueLength = try? record.readVarint(), valueLength >= 6,
            let value = record.readSlice(length: Int(valueLength))
        {
            epoch = value.getInteger(at: value.readerIndex + 2, as: Int32.self) ?? 0
        }
        return ControlRecord(kind: kindValue, coordinatorEpoch: epoch)
    }
}
