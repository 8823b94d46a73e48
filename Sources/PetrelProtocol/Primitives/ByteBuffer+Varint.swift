import NIOCore

// Two varint families live in Kafka: unsigned LEB128 varints for the flexible protocol's lengths and
// tags, and zigzag-signed varints/varlongs inside record batches.
extension ByteBuffer {
    @inlinable
    public mutating func readUnsignedVarint() throws -> UInt32 {
        var result: UInt32 = 0
        var shift: UInt32 = 0
        while true {
            guard let byte = readInteger(as: UInt8.self) else { throw ProtocolError.truncated("varint") }
            if shift == 28 && byte > 0x0F { throw ProtocolError(.invalidLength, "unsigned varint over 32 bits") }
            result |= UInt32(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    @inlinable
    @discardableResult
    public mutating func writeUnsignedVarint(_ value: UInt32) -> Int {
        var remaining = value
        var written = 0
        while remaining >= 0x80 {
            writeInteger(UInt8(truncatingIfNeeded: remaining) | 0x80)
            remaining >>= 7
            written += 1
        }
        writeInteger(UInt8(remaining))
        return written + 1
    }

    @inlinable
    public mutating func readUnsignedVarlong() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard let byte = readInteger(as: UInt8.self) else { throw ProtocolError.truncated("varlong") }
            if shift == 63 && byte > 0x01 { throw ProtocolError(.invalidLength, "varlong over 64 bits") }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    @inlinable
    @discardableResult
    public mutating func writeUnsignedVarlong(_ value: UInt64) -> Int {
        var remaining = value
        var written = 0
        while remaining >= 0x80 {
            writeInteger(UInt8(truncatingIfNeeded: remaining) | 0x80)
            remaining >>= 7
            written += 1
        }
        writeInteger(UInt8(remaining))
        return written + 1
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
