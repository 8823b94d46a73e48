#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// MD5 (RFC 1321) of one buffer, on the stack: the key map digests every record key of the dirty log,
/// and a library hasher's per-call context allocation was a quarter of the cleaner's time. Used only
/// as Kafka's cleaner uses it, as a 128-bit key fingerprint, never for security.
enum MD5 {
    /// The 16-byte digest as two 64-bit words: bytes 0–7 and 8–15, read little-endian.
    static func digest(_ bytes: UnsafeRawBufferPointer) -> (UInt64, UInt64) {
        var state: (UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476)
        let count = bytes.count
        var offset = 0
        while offset + 64 <= count {
            compress(&state, UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + 64)]))
            offset += 64
        }
        // The last block(s): the rest, a 0x80 byte, zeros, and the length in bits, little-endian.
        var tail:
            (
                UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64
            ) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &tail) { block in
            let rest = count - offset
            if rest > 0 {
                block.baseAddress!.copyMemory(from: bytes.baseAddress! + offset, byteCount: rest)
            }
            block[rest] = 0x80
            let blocks = rest + 9 <= 64 ? 1 : 2
            let bits = UInt64(count) &* 8
            block.storeBytes(of: bits.littleEndian, toByteOffset: blocks * 64 - 8, as: UInt64.self)
            for index in 0..<blocks {
                compress(&state, UnsafeRawBufferPointer(rebasing: block[(index * 64)..<(index * 64 + 64)]))
            }
        }
        return (UInt64(state.0) | UInt64(state.1) << 32, UInt64(state.2) | UInt64(state.3) << 32)
    }

    private static let shifts: [UInt32] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
        5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
        4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
        6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ]

    /// floor(|sin(i + 1)| · 2^32), as RFC 1321 defines the table.
    private static let constants: [UInt32] = (0..<64).map {
        UInt32(truncatingIfNeeded: Int64(abs(sin(Double($0 + 1))) * 4_294_967_296))
    }

    private static func compress(_ state: inout (UInt32, UInt32, UInt32, UInt32), _ block: UnsafeRawBufferPointer) {
        var (a, b, c, d) = state
        for index in 0..<64 {
            var f: UInt32
            let g: Int
            switch index {
            case 0..<16:
                f = (b & c) | (~b & d)
                g = index
            case 16..<32:
                f = (d & b) | (~d & c)
                g = (5 &* index &+ 1) & 15
            case 32..<48:
                f = b ^ c ^ d
                g = (3 &* index &+ 5) & 15
            default:
                f = c ^ (b | ~d)
                g = (7 &* index) & 15
            }
            let word = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: g * 4, as: UInt32.self))
            f = f &+ a &+ constants[index] &+ word
            a = d
            d = c
            c = b
            let shift = shifts[index]
            b = b &+ ((f << shift) | (f >> (32 - shift)))
        }
        state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d)
    }
}
