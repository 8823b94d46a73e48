import NIOCore

extension RecordBatchHeader {
    /// The batch as a LogAppendTime topic stores it: the timestamp-type attribute set and the max
    /// timestamp replaced by the broker's append time (`now`), with the CRC recomputed (it covers both).
    /// Every record of such a batch reads as stamped at `now`. The batch bytes are copied once (they are
    /// a slice of the request frame); CreateTime topics never pay for this.
    public static func stampingLogAppendTime(
        _ batch: ByteBuffer,
        header: RecordBatchHeader,
        now: Int64
    ) -> (batch: ByteBuffer, header: RecordBatchHeader) {
        var header = header
        header.attributes.rawValue |= 0x08
        header.maxTimestamp = now
        var stamped = batch
        let start = stamped.readerIndex
        stamped.setInteger(header.attributes.rawValue, at: start + crcCoveredOffset)
        stamped.setInteger(now, at: start + maxTimestampOffset)
        header.crc = CRC32C.checksum(
            stamped,
            at: start + crcCoveredOffset,
            length: header.totalSize - crcCoveredOffset
        )
        stamped.setInteger(header.crc, at: start + crcOffset)
        return (stamped, header)
    }
}
