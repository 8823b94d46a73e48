import NIOCore

// Fixed-size values, strings and bytes in both the classic and the flexible ("compact") encodings.
// Readers throw `ProtocolError` instead of returning nil so that message decoders read straight through.
extension ByteBuffer {
    @inlinable
    public mutating func readKafkaInteger<T: FixedWidthInteger>(as type: T.Type = T.self) throws -> T {
        guard let value = readInteger(endianness: .big, as: T.self) else { throw ProtocolError.truncated("\(T.self)") }
        return value
    }

    public mutating func readKafkaBool() throws -> Bool {
        switch try readKafkaInteger(as: UInt8.self) {
        case 0: return false
        case 1: return true
        case let other: throw ProtocolError(.invalidValue, "bool byte \(other)")
        }
    }

    public mutating func writeKafkaBool(_ value: Bool) {
        writeInteger(value ? 1 : 0, as: UInt8.self)
    }

    public mutating func readKafkaFloat64() throws -> Double {
        Double(bitPattern: try readKafkaInteger(as: UInt64.self))
    }

    public mutating func writeKafkaFloat64(_ value: Double) {
        writeInteger(value.bitPattern)
    }

    public mutating func readKafkaUUID() throws -> KafkaUUID {
        KafkaUUID(high: try readKafkaInteger(), low: try readKafkaInteger())
    }

    public mutating func writeKafkaUUID(_ value: KafkaUUID) {
        writeInteger(value.high)
        writeInteger(value.low)
    }

    // MARK: Lengths

    /// A string/bytes length: int16 or int32 classic, uvarint(n+1) compact. nil means null.
    @usableFromInline
    mutating func readKafkaLength(flexible: Bool, classicWidth16: Bool) throws -> Int? {
        let length: Int
        if flexible {
            let raw = try readUnsignedVarint()
            if raw == 0 { return nil }
            length = Int(raw - 1)
        } else if classicWidth16 {
            length = Int(try readKafkaInteger(as: Int16.self))
        } else {
            length = Int(try readKafkaInteger(as: Int32.self))
        }
        if length < 0 {
            guard length == -1 else { throw ProtocolError(.invalidLength, "length \(length)") }
            return nil
        }
        guard length <= readableBytes else { throw ProtocolError.truncated("a \(length)-byte field") }
        return length
    }

    @usableFromInline
    mutating func writeKafkaLength(_ length: Int?, flexible: Bool, classicWidth16: Bool) {
        if flexible {
            writeUnsignedVarint(UInt32(length.map { $0 + 1 } ?? 0))
        } else if classicWidth16 {
            writeInteger(Int16(length ?? -1))
        } else {
            writeInteger(Int32(length ?? -1))
        }
    }

    // MARK: Strings

    public mutating func readKafkaNullableString(flexible: Bool) throws -> String? {
        guard let length = try readKafkaLength(flexible: flexible, classicWidth16: true) else { return nil }
        return readString(length: length)
    }

    public mutating func readKafkaString(flexible: Bool) throws -> String {
        guard let value = try readKafkaNullableString(flexible: flexible) else {
            throw ProtocolError(.invalidValue, "null in a non-nullable string")
        }
        return value
    }

    public mutating func writeKafkaNullableString(_ value: String?, flexible: Bool) {
        guard let value else {
            writeKafkaLength(nil, flexible: flexible, classicWidth16: true)
            return
        }
        writeKafkaString(value, flexible: flexible)
    }

    public mutating func writeKafkaString(_ value: String, flexible: Bool) {
        writeKafkaLength(value.utf8.count, flexible: flexible, classicWidth16: true)
        writeString(value)
    }

    // MARK: Bytes (slices of this buffer: no copy)

    public mutating func readKafkaNullableBytes(flexible: Bool) throws -> ByteBuffer? {
        guard let length = try readKafkaLength(flexible: flexible, classicWidth16: false) else { return nil }
        return readSlice(length: length)
    }

    public mutating func readKafkaBytes(flexible: Bool) throws -> ByteBuffer {
        try readKafkaNullableBytes(flexible: flexible) ?? ByteBuffer()
    }

    public mutating func writeKafkaNullableBytes(_ value: ByteBuffer?, flexible: Bool) {
        guard let value else {
            writeKafkaLength(nil, flexible: flexible, classicWidth16: false)
            return
        }
        writeKafkaBytes(value, flexible: flexible)
    }

    public mutating func writeKafkaBytes(_ value: ByteBuffer, flexible: Bool) {
        writeKafkaLength(value.readableBytes, flexible: flexible, classicWidth16: false)
        writeImmutableBuffer(value)
    }
}
