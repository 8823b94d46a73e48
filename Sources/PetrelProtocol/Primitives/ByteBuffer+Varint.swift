import NIOCore

// Two varint families live in Kafka: unsigned LEB128 varints for the flexible protocol's lengths and
// tags, and zigzag-signed varints/varlongs inside record batches.
extension ByteBuffer {
    /// An unsigned LEB128 varint of at most 32 bits (flexible-protocol lengths, counts and tags).
    @inlinable
    public mutating func readUnsignedVarint() throws -> UInt32 {
        try readLEB128(as: UInt32.self)
    }

    @inlinable
    @discardableResult
    public mutating func writeUnsignedVarint(_ value: UInt32) -> Int {
        writeLEB128(value)
    }

    /// An unsigned LEB128 varint of at most 64 bits.
    @inlinable
    public mutating func readUnsignedVarlong() throws -> UInt64 {
        try readLEB128(as: UInt64.self)
    }

    @inlinable
    @discardableResult
    public mutating func writeUnsignedVarlong(_ value: UInt64) -> Int {
        writeLEB128(value)
    }

    @inlinable
    mutating func readLEB128<Value: FixedWidthInteger & UnsignedInteger>(as: Value.Type) throws -> Value {
        var result: Value = 0
        var shift = 0
        while true {
            guard let byte = readInteger(as: UInt8.self) else { throw ProtocolError.truncated("varint") }
            // The last byte may only carry the bits the type has left.
            let room = Value.bitWidth - shift
            if room < 7 && byte >> UInt8(room) != 0 {
                throw ProtocolError(.invalidLength, "varint over \(Value.bitWidth) bits")
            }
            result |= Value(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    @inlinable
    mutating func writeLEB128<Value: FixedWidthInteger & UnsignedInteger>(_ value: Value) -> Int {
        var remaining = value
        var written = 1
        while remaining >= 0x80 {
            writeInteger(UInt8(truncatingIfNeeded: remaining) | 0x80)
            remaining >>= 7
            written += 1
        }
        writeInteger(UInt8(remaining))
        return written
    }

    /// A zigzag-encoded signed 32-bit varint (record fields).
    @inlinable
    public mutating func readVarint() throws -> Int32 {
        let raw = try readUnsignedVarint()
        return Int32(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    @inlinable
    @discardableResult
    public mutating func writeVarint(_ value: Int32) -> Int {
        writeUnsignedVarint(UInt32(bitPattern: (value << 1) ^ (value >> 31)))
    }

    /// A zigzag-encoded signed 64-bit varint (record timestamps).
    @inlinable
    public mutating func readVarlong() throws -> Int64 {
        let raw = try readUnsignedVarlong()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    @inlinable
    @discardableResult
    public mutating func writeVarlong(_ value: Int64) -> Int {
        writeUnsignedVarlong(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }
}

/// Encoded sizes, for building records without writing them twice.
public enum Varint {
    @inlinable
    public static func size(ofUnsigned value: UInt64) -> Int {
        var remaining = value
        var size = 1
        while remaining >= 0x80 {
            remaining >>= 7
            size += 1
        }
        return size
    }

    @inlinable
    public static func size(of value: Int32) -> Int {
        size(ofUnsigned: UInt64(UInt32(bitPattern: (value << 1) ^ (value >> 31))))
    }

    @inlinable
    public static func size(of value: Int64) -> Int {
        size(ofUnsigned: UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }
}
