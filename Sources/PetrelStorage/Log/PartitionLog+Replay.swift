import PetrelProtocol

extension PartitionLog {
    /// Hands every record from the log start to the log end to `body`, in offset order, with the batch
    /// that holds it: how the broker's own logs (committed offsets, transactions) are read back into
    /// memory at start. Reads at most 1 MiB at a time.
    public func forEachRecord(_ body: (RecordBatch, Record) throws -> Void) throws {
        var next = logStartOffset
        while next < logEndOffset {
            guard let slice = try read(from: next, maxBytes: 1 << 20).slice else { break }
            for batch in try RecordBatchDecoder.decodeBatches(try slice.readBytes()) {
                for record in batch.records where record.offset >= next {
                    try body(batch, record)
                }
                next = batch.header.nextOffset
            }
        }
    }
}
