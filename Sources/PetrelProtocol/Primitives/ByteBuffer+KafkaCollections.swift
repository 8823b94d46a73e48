import NIOCore

// Arrays and tagged-field sections, the two composite shapes of the protocol.
extension ByteBuffer {
    /// An array count: int32 classic, uvarint(n+1) compact. nil means a null array.
    mutating func readKafkaArrayCount(flexible: Bool) throws -> Int? {
        let count: Int
        if flexible {
            let raw = try readUnsignedVarint()
            if raw == 0 { return nil }
            count = Int(raw - 1)
        } else {
            count = Int(try readKafkaInteger(as: Int32.self))
            if count == -1 { return nil }
        }
        // Every element takes at least one byte: a larger count is hostile or corrupt, and must not
        // make us loop or allocate for it.
        guard count >= 0, count <= readableBytes else {
            throw ProtocolError(.invalidLength, "array of \(count) elements in \(readableBytes) bytes")
        }
        return count
    }

    public mutating func readKafkaNullableArray<Element>(
        flexible: Bool,
        _ readElement: (inout ByteBuffer) throws -> Element
    ) throws -> [Element]? {
        guard let count = try readKafkaArrayCount(flexible: flexible) else { return nil }
        var elements: [Element] = []
        elements.reserveCapacity(count)
        for _ in 0..<count { elements.append(try readElement(&self)) }
        return elements
    }

    /// A non-nullable array. A null one (which some brokers send anyway) reads as empty: being strict
    /// here would only make a working exchange fail.
    public mutating func readKafkaArray<Element>(
        flexible: Bool,
        _ readElement: (inout ByteBuffer) throws -> Element
    ) throws -> [Element] {
        try readKafkaNullableArray(flexible: flexible, readElement) ?? []
    }

    public mutating func writeKafkaNullableArray<Element>(
        _ elements: [Element]?,
        flexible: Bool,
        _ writeElement: (inout ByteBuffer, Element) -> Void
    ) {
        guard let elements else {
            if flexible { writeUnsignedVarint(0) } else { writeInteger(Int32(-1)) }
            return
        }
        writeKafkaArray(elements, flexible: flexible, writeElement)
    }

    public mutating func writeKafkaArray<Element>(
        _ elements: [Element],
        flexible: Bool,
        _ writeElement: (inout ByteBuffer, Element) -> Void
    ) {
        if flexible { writeUnsignedVarint(UInt32(elements.count + 1)) } else { writeInteger(Int32(elements.count)) }
        for element in elements { writeElement(&self, element) }
    }

    // MARK: Tagged fields

    /// Reads a tagged-field section, handing each field's bytes to `body` as a slice of their own.
    public mutating func readKafkaTaggedFields(_ body: (UInt32, inout ByteBuffer) throws -> Void) throws {
        let count = try readUnsignedVarint()
        guard count <= readableBytes else { throw ProtocolError(.invalidLength, "\(count) tagged fields") }
        var previousTag: UInt32?
        for _ in 0..<count {
            let tag = try readUnsignedVarint()
            if let previousTag, tag <= previousTag {
                throw ProtocolError(.invalidValue, "tagged fields out of order (\(tag) after \(previousTag))")
            }
            previousTag = tag
            let size = Int(try readUnsignedVarint())
            guard var field = readSlice(length: size) else { throw ProtocolError.truncated("tagged field \(tag)") }
            try body(tag, &field)
        }
    }

    public mutating func skipKafkaTaggedFields() throws {
        try readKafkaTaggedFields { _, _ in }
    }

    public mutating func writeEmptyKafkaTaggedFields() {
        writeInteger(UInt8(0))
    }

    /// Writes one tagged field: its tag, its size, then what `body` writes.
    public mutating func writeKafkaTaggedField(tag: UInt32, _ body: (inout ByteBuffer) -> Void) {
        var field = ByteBufferAllocator().buffer(capacity: 16)
        body(&field)
        writeUnsignedVarint(tag)
        writeUnsignedVarint(UInt32(field.readableBytes))
        writeBuffer(&field)
    }
}
