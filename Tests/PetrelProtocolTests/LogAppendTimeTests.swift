import NIOCore
import PetrelProtocol
import Testing

@Suite("LogAppendTime stamping")
struct LogAppendTimeTests {
    @Test("a stamped batch is valid, says LogAppendTime, and every record reads as appended at that time")
    func stamp() throws {
        var builder = RecordBatchBuilder()
        for index in 0..<3 {
            builder.append(key: nil, value: ByteBuffer(string: "v\(index)"), timestamp: 1_000 + Int64(index))
        }
        // A slice of a larger buffer, as a batch is inside a request frame.
        var frame = ByteBuffer(string: "prefix")
        frame.writeImmutableBuffer(try builder.build())
        frame.moveReaderIndex(forwardBy: 6)
        let original = frame
        let header = try RecordBatchValidator.validateProduced(frame)
        let (stamped, stampedHeader) = RecordBatchHeader.stampingLogAppendTime(
            frame,
            header: header,
            now: 1_700_000_000_000
        )
        #expect(stampedHeader.attributes.timestampType == .logAppendTime)
        #expect(stampedHeader.maxTimestamp == 1_700_000_000_000 && stampedHeader.baseTimestamp == 1_000)
        let revalidated = try RecordBatchValidator.validateProduced(stamped)
        #expect(revalidated == stampedHeader, "the CRC was recomputed over the new attributes and timestamp")
        let records = try RecordBatchDecoder.decodeBatches(stamped).flatMap(\.records)
        #expect(records.map(\.timestamp) == [1_700_000_000_000, 1_700_000_000_000, 1_700_000_000_000])
        #expect(frame == original, "the request's own bytes are untouched")
    }
}
