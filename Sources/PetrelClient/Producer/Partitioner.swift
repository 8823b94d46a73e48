import NIOCore

/// Kafka's default partitioner, as the Java client has it: a keyed record goes to
/// `toPositive(murmur2(key)) % partitions`, so the same key lands on the same partition whichever
/// client produced it; a record without a key sticks to one partition until its batch is sent.
public enum Partitioner {
    /// MurmurHash2 with Kafka's seed, over the key bytes (the Java client's `Utils.murmur2`).
    public static func murmur2(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        let seed: UInt32 = 0x9747_B28C
        let m: UInt32 = 0x5BD1_E995
        let length = bytes.count
        var h = seed ^ UInt32(truncatingIfNeeded: length)
        var index = 0
        while index + 4 <= length {
            var k =
                UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2]) << 16 | UInt32(
                    bytes[index + 3]
                ) << 24
            k = k &* m
            k ^= k >> 24
            k = k &* m
            h = h &* m
            h ^= k
            index += 4
        }
        let tail = length & 3
        if tail == 3 { h ^= UInt32(bytes[index + 2]) << 16 }
        if tail >= 2 { h ^= UInt32(bytes[index + 1]) << 8 }
        if tail >= 1 {
            h ^= UInt32(bytes[index])
            h = h &* m
        }
        h ^= h >> 13
        h = h &* m
        h ^= h >> 15
        return Int32(bitPattern: h)
    }

    public static func murmur2(_ key: ByteBuffer) -> Int32 {
        key.withUnsafeReadableBytes { murmur2($0) }
    }

    /// The partition the Java client's default partitioner picks for a key.
    public static func partition(forKey key: ByteBuffer, partitionCount: Int) -> Int32 {
        Int32((murmur2(key) & 0x7FFF_FFFF) % Int32(partitionCount))
    }
}
