/// Zigzag varints read straight from memory.
struct RawVarintReader {
    let bytes: UnsafeRawBufferPointer
    var position = 0

    mutating func varint() throws -> Int64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while position < bytes.count, shift < 64 {
            let byte = bytes[position]
            position += 1
            value |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return Int64(bitPattern: (value >> 1) ^ (0 &- (value & 1))) }
            shift += 7
        }
        throw StorageError("clean", path: "record", reason: "a varint is cut short")
    }
}
