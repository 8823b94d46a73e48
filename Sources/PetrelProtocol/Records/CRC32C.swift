import CCRC32C
import NIOCore

/// CRC-32C (Castagnoli), the checksum of record batch v2. Hardware-accelerated with SSE4.2.
public enum CRC32C {
    public static func checksum(_ bytes: UnsafeRawBufferPointer, extending crc: UInt32 = 0) -> UInt32 {
        petrel_crc32c_extend(crc, bytes.baseAddress, bytes.count)
    }

    public static func checksum<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> UInt32 {
        if let crc = bytes.withContiguousStorageIfAvailable({ checksum(UnsafeRawBufferPointer($0)) }) { return crc }
        return Array(bytes).withUnsafeBytes { checksum($0) }
    }

    /// The checksum of `length` bytes of `buffer` starting at `index`, without moving its reader index.
    public static func checksum(_ buffer: ByteBuffer, at index: Int, length: Int) -> UInt32 {
        buffer.withUnsafeReadableBytes { bytes in
            let start = index - buffer.readerIndex
            return checksum(UnsafeRawBufferPointer(rebasing: bytes[start..<start + length]))
        }
    }

    /// The table-driven fallback, whatever the CPU: for checking and measuring it where SSE4.2 exists.
    public static func portableChecksum(_ bytes: UnsafeRawBufferPointer, extending crc: UInt32 = 0) -> UInt32 {
        petrel_crc32c_extend_portable(crc, bytes.baseAddress, bytes.count)
    }

    public static var isHardwareAccelerated: Bool { petrel_crc32c_is_hardware_accelerated() != 0 }
}
