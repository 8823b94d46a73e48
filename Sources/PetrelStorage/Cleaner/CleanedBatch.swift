import NIOCore
import PetrelProtocol

/// Writes the batches the cleaner keeps in place of stored ones. Offsets never change: a rewritten
/// batch keeps its base offset and last offset delta (so a producer's sequence range stays whole) and
/// each kept record its offset delta; only the record count shrinks.
enum CleanedBatch {
    /// `original` holding only `kept` (some of its records, in order), compressed with its codec.
    /// With `deleteHorizon` the batch is stamped (KIP-534): its base timestamp becomes the horizon and the
    /// records' timestamp deltas are rewritten relative to it, so every record keeps its timestamp.
    static func build(original: RecordBatchHeader, kept: [StoredRecord], deleteHorizon: Int64?) throws -> ByteBuffer {
        precondition(!kept.isEmpty)
        var header = original
        if let deleteHorizon {
            header.baseTimestamp = deleteHorizon
            header.attributes.hasDeleteHorizon = true
        }
        if original.attributes.timestampType == .createTime {
            header.maxTimestamp = kept.reduce(Int64.min) { max($0, $1.timestamp) }
        }
        header.recordCount = Int32(kept.count)
        var body = ByteBufferAllocator().buffer(capacity: kept.reduce(0) { $0 + $1.tail.readableBytes + 16 })
        for record in kept {
            let timestampDelta = record.timestamp &- header.baseTimestamp
            let size =
                1 + Varint.size(of: timestampDelta) + Varint.size(of: record.offsetDelta) + record.tail.readableBytes
            body.writeVarint(Int32(size))
            body.writeInteger(record.attributes)
            body.writeVarlong(timestampDelta)
            body.writeVarint(record.offsetDelta)
            body.writeImmutableBuffer(record.tail)
        }
        let payload = try Compression.compress(body, codec: original.attributes.compression ?? .none)
        return header.sealing(payload)
    }

    /// A batch with no records left that must stay for its offsets and producer fields: the last batch
    /// of an idempotent producer (so deduplication still works after a restart, as Kafka's cleaner keeps
    /// it) or the last batch of a cleaned segment (so segments stay contiguous). Uncompressed, as Kafka
    /// writes empty batches: an empty compressed payload is not valid for every codec.
    static func empty(original: RecordBatchHeader) -> ByteBuffer {
        var header = original
        header.attributes = original.attributes.with(compression: .none)
        header.attributes.hasDeleteHorizon = false
        header.baseTimestamp = original.maxTimestamp
        header.recordCount = 0
        return header.sealing(ByteBuffer())
    }
}
