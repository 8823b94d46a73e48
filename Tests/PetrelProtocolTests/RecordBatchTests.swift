import NIOCore
import PetrelProtocol
import Testing

@Suite("Record batches")
struct RecordBatchTests {
    @Test("CRC-32C check value")
    func crcCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }

    @Test("CRC-32C extends across chunks, and agrees at every length and alignment")
    func crcChaining() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let whole = CRC32C.checksum(bytes)
        for split in [0, 1, 7, 8, 9, 500, 999, 1000] {
            let first = bytes[..<split].withUnsafeBytes { CRC32C.checksum($0) }
            let both = bytes[split...].withUnsafeBytes { CRC32C.checksum($0, extending: first) }
            #expect(both == whole, "split at \(split)")
        }
    }

    @Test("the table-driven fallback agrees with the hardware path at every length and offset")
    func crcFallbackAgrees() {
        #expect(Array("123456789".utf8).withUnsafeBytes { CRC32C.portableChecksum($0) } == 0xE306_9283)
        let bytes = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 17) }
        bytes.withUnsafeBytes { all in
            for start in 0..<9 {
                for end in stride(from: start, through: all.count, by: 7) {
                    let slice = UnsafeRawBufferPointer(rebasing: all[start..<end])
                    #expect(
                        CRC32C.portableChecksum(slice, extending: 5) == CRC32C.checksum(slice, extending: 5),
                        "\(start)..<\(end)"
                    )
                }
            }
        }
        // Around the sizes where the hardware path switches to three streams of 256 and 8192 bytes.
        let long = (0..<70_000).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 7) }
        long.withUnsafeBytes { all in
            for length in [767, 768, 769, 1_535, 1_536, 2_000, 24_575, 24_576, 24_577, 25_344, 49_152, 50_000, 69_990] {
                for start in [0, 3, 8] {
                    let slice = UnsafeRawBufferPointer(rebasing: all[start..<start + length])
                    #expect(CRC32C.portableChecksum(slice) == CRC32C.checksum(slice), "\(length) bytes from \(start)")
                }
            }
        }
    }

    private func sampleBatch(records: Int = 3, producerID: Int64 = -1, baseSequence: Int32 = -1) throws -> ByteBuffer {
        var builder = RecordBatchBuilder(
            producerID: producerID,
            producerEpoch: producerID >= 0 ? 0 : -1,
            baseSequence: baseSequence
        )
        for index in 0..<records {
            builder.append(
                key: index == 0 ? nil : ByteBuffer(string: "key-\(index)"),
                value: ByteBuffer(string: "value-\(index)"),
                headers: [
                    RecordHeader(key: "trace", value: ByteBuffer(string: "t\(index)")),
                    RecordHeader(key: "empty", value: nil),
                ],
                timestamp: 1_700_000_000_000 + Int64(index) * 10
            )
        }
        return try builder.build()
    }

    @Test("a built batch validates, and decodes back to its records")
    func buildValidateDecode() throws {
        let batch = try sampleBatch()
        let header = try RecordBatchValidator.validateProduced(batch)
        #expect(header.recordCount == 3)
        #expect(header.lastOffsetDelta == 2)
        #expect(header.baseTimestamp == 1_700_000_000_000)
        #expect(header.maxTimestamp == 1_700_000_000_020)
        #expect(header.totalSize == batch.readableBytes)

        let decoded = try RecordBatchDecoder.decodeBatches(batch)
        #expect(decoded.count == 1)
        let records = decoded[0].records
        #expect(records.map(\.offset) == [0, 1, 2])
        #expect(records[0].key == nil)
        #expect(records[1].key == ByteBuffer(string: "key-1"))
        #expect(records[2].value == ByteBuffer(string: "value-2"))
        #expect(records[2].timestamp == 1_700_000_000_020)
        #expect(
            records[1].headers == [
                RecordHeader(key: "trace", value: ByteBuffer(string: "t1")), RecordHeader(key: "empty", value: nil),
            ]
        )
    }

    @Test("a flipped byte anywhere under the CRC is caught")
    func corruptionIsCaught() throws {
        let batch = try sampleBatch()
        for position in stride(from: RecordBatchHeader.crcCoveredOffset, to: batch.readableBytes, by: 5) {
            var corrupt = batch
            corrupt.setInteger(corrupt.getInteger(at: position, as: UInt8.self)! ^ 0x40, at: position)
            #expect(refusal(corrupt) == .corruptMessage, "flipped byte at \(position)")
        }
    }

    @Test("base offset and leader epoch are outside the CRC, so the broker can rewrite them")
    func rewritableFields() throws {
        var batch = try sampleBatch()
        batch.setInteger(Int64(123_456), at: 0)
        batch.setInteger(Int32(7), at: RecordBatchHeader.partitionLeaderEpochOffset)
        let header = try RecordBatchValidator.validateProduced(batch)
        #expect(header.baseOffset == 123_456)
        #expect(try RecordBatchDecoder.decodeBatches(batch)[0].records.map(\.offset) == [123_456, 123_457, 123_458])
    }

    private func refusal(_ records: ByteBuffer, maxBatchBytes: Int = .max) -> ErrorCode? {
        do {
            _ = try RecordBatchValidator.validateProduced(records, maxBatchBytes: maxBatchBytes)
            return nil
        } catch {
            return error.code
        }
    }

    @Test("produce validation answers with Kafka's error codes")
    func validationCodes() throws {
        let batch = try sampleBatch()
        #expect(refusal(batch) == nil)
        #expect(refusal(batch, maxBatchBytes: batch.readableBytes - 1) == .messageTooLarge)
        #expect(refusal(batch.getSlice(at: 0, length: 40)!) == .corruptMessage)
        #expect(refusal(batch.getSlice(at: 0, length: batch.readableBytes - 1)!) == .corruptMessage)

        var two = batch
        two.writeImmutableBuffer(batch)
        #expect(refusal(two) == .invalidRecord)

        var legacy = batch
        legacy.setInteger(Int8(1), at: RecordBatchHeader.magicOffset)
        #expect(refusal(legacy) == .unsupportedForMessageFormat)

        var unknownCodec = batch
        unknownCodec.setInteger(Int16(6), at: RecordBatchHeader.crcCoveredOffset)
        resealCRC(&unknownCodec)
        #expect(refusal(unknownCodec) == .unsupportedCompressionType)

        // A transactional batch needs a producer id (the transaction coordinator checks the rest).
        var transactional = batch
        transactional.setInteger(Int16(0x10), at: RecordBatchHeader.crcCoveredOffset)
        resealCRC(&transactional)
        #expect(refusal(transactional) == .invalidRecord)

        var miscounted = batch
        miscounted.setInteger(Int32(5), at: 57)
        resealCRC(&miscounted)
        #expect(refusal(miscounted) == .invalidRecord)

        #expect(refusal(try sampleBatch(producerID: 42, baseSequence: 0)) == nil)
        #expect(refusal(try sampleBatch(producerID: 42, baseSequence: -1)) == .invalidRecord)
    }

    @Test("a partial trailing batch (a fetch cut at its size limit) is skipped")
    func partialTrailingBatch() throws {
        var two = try sampleBatch(records: 2)
        let second = try sampleBatch(records: 4)
        two.writeImmutableBuffer(second.getSlice(at: 0, length: second.readableBytes - 10)!)
        let batches = try RecordBatchDecoder.decodeBatches(two)
        #expect(batches.count == 1)
        #expect(batches[0].records.count == 2)
    }

    @Test("a fetched batch whose offsets or timestamps overflow Int64 is an error, not a trap")
    func overflowingBatches() throws {
        var lateOffset = try sampleBatch(records: 3)
        lateOffset.setInteger(Int64.max - 1, at: 0)  // the base offset, outside the CRC
        #expect(throws: ProtocolError.self) { try RecordBatchDecoder.decodeBatches(lateOffset) }
        var lateTimestamp = try sampleBatch(records: 3)
        // The records add 0, 10 and 20 ms to the base timestamp.
        lateTimestamp.setInteger(Int64.max - 5, at: RecordBatchHeader.baseTimestampOffset)
        resealCRC(&lateTimestamp)
        #expect(throws: ProtocolError.self) { try RecordBatchDecoder.decodeBatches(lateTimestamp) }
    }

    @Test("sequence numbers wrap from Int32.max to 0")
    func sequenceWrap() {
        let header = RecordBatchHeader(
            lastOffsetDelta: 2,
            producerID: 1,
            producerEpoch: 0,
            baseSequence: Int32.max - 1,
            recordCount: 3
        )
        #expect(header.lastSequence == 0)
    }

    private func resealCRC(_ batch: inout ByteBuffer) {
        let crc = CRC32C.checksum(
            batch,
            at: RecordBatchHeader.crcCoveredOffset,
            length: batch.readableBytes - RecordBatchHeader.crcCoveredOffset
        )
        batch.setInteger(crc, at: RecordBatchHeader.crcOffset)
    }
}
