import NIOCore
import PetrelProtocol
import PetrelStorage

/// Encodes a Fetch response (v4–12) the way the generated `FetchResponse` would, except that each
/// partition's records are not copied into the frame: the frame splits around them and they go out
/// from the segment file with sendfile. Tests hold the two encodings byte for byte equal.
enum FetchResponseWriter {
    struct Partition: Sendable {
        var index: Int32
        var errorCode: ErrorCode
        var highWatermark: Int64
        var logStartOffset: Int64
        var lastStableOffset: Int64 = -1
        /// For read_committed fetches: the aborted transactions in the range returned.
        var abortedTransactions: [AbortedTransaction] = []
        var records: LogSlice?
    }

    struct Topic: Sendable {
        var name: String
        var partitions: [Partition]
    }

    static func frame(
        correlationID: Int32,
        version: Int16,
        errorCode: ErrorCode = .none,
        topics: [Topic],
        allocator: ByteBufferAllocator
    ) -> ResponseFrame {
        let flexible = FetchResponse.isFlexible(version: version)
        var buffer = allocator.buffer(
            capacity: 64 + topics.reduce(0) { $0 + 32 + $1.name.utf8.count + 64 * $1.partitions.count }
        )
        var splits: [(at: Int, slice: LogSlice)] = []
        var firstError = errorCode
        buffer.writeInteger(Int32(0))  // frame length, set below
        ResponseHeader(correlationID: correlationID).write(
            to: &buffer,
            headerVersion: FetchResponse.headerVersion(for: version)
        )
        buffer.writeInteger(Int32(0))  // throttle time (v1+)
        if version >= 7 {
            buffer.writeInteger(errorCode.rawValue)
            buffer.writeInteger(Int32(0))  // session id: no fetch sessions
        }
        buffer.writeKafkaArray(topics, flexible: flexible) { buffer, topic in
            buffer.writeKafkaString(topic.name, flexible: flexible)
            buffer.writeKafkaArray(topic.partitions, flexible: flexible) { buffer, partition in
                buffer.writeInteger(partition.index)
                buffer.writeInteger(partition.errorCode.rawValue)
                if firstError == ErrorCode.none { firstError = partition.errorCode }
                buffer.writeInteger(partition.highWatermark)
                buffer.writeInteger(partition.lastStableOffset)
                if version >= 5 { buffer.writeInteger(partition.logStartOffset) }
                buffer.writeKafkaArray(partition.abortedTransactions, flexible: flexible) { buffer, aborted in
                    buffer.writeInteger(aborted.producerID)
                    buffer.writeInteger(aborted.firstOffset)
                    if flexible { buffer.writeEmptyKafkaTaggedFields() }
                }
                if version >= 11 { buffer.writeInteger(Int32(-1)) }  // preferred read replica
                if let records = partition.records {
                    if flexible {
                        buffer.writeUnsignedVarint(UInt32(records.length + 1))
                    } else {
                        buffer.writeInteger(Int32(records.length))
                    }
                    splits.append((buffer.writerIndex, records))
                } else {
                    if flexible { buffer.writeUnsignedVarint(1) } else { buffer.writeInteger(Int32(0)) }
                }
                if flexible { buffer.writeEmptyKafkaTaggedFields() }
            }
            if flexible { buffer.writeEmptyKafkaTaggedFields() }
        }
        if flexible { buffer.writeEmptyKafkaTaggedFields() }
        let fileBytes = splits.reduce(0) { $0 + $1.slice.length }
        buffer.setInteger(Int32(buffer.readableBytes - 4 + fileBytes), at: buffer.readerIndex)

        var parts: [ResponseFrame.Part] = []
        parts.reserveCapacity(2 * splits.count + 1)
        var from = buffer.readerIndex
        for split in splits {
            parts.append(.bytes(buffer.getSlice(at: from, length: split.at - from)!))
            parts.append(.file(split.slice))
            from = split.at
        }
        parts.append(.bytes(buffer.getSlice(at: from, length: buffer.writerIndex - from)!))
        return ResponseFrame(parts: parts, errorCode: firstError)
    }
}
