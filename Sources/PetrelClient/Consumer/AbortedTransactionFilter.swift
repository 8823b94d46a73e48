import PetrelProtocol

/// What a read_committed consumer drops from a fetched partition (Kafka's consumer-side rule): the
/// broker lists each aborted transaction overlapping the response by producer id and first offset; from
/// that offset on, the producer's transactional batches are aborted data, until its ABORT marker. Control
/// batches are never data.
struct AbortedTransactionFilter {
    /// Aborted transactions not reached yet, by first offset.
    private var upcoming: [(producerID: Int64, firstOffset: Int64)]
    /// Producers whose aborted transaction the batches are in.
    private var aborted: Set<Int64> = []

    init(_ abortedTransactions: [(producerID: Int64, firstOffset: Int64)]) {
        upcoming = abortedTransactions.sorted { $0.firstOffset < $1.firstOffset }
    }

    /// Whether `batch` (the next one of the partition, in offset order) holds records to hand out.
    mutating func keeps(_ batch: RecordBatch) -> Bool {
        let header = batch.header
        while let next = upcoming.first, next.firstOffset <= header.lastOffset {
            aborted.insert(next.producerID)
            upcoming.removeFirst()
        }
        if header.attributes.isControl {
            if let key = batch.records.first?.key, key.getInteger(at: key.readerIndex + 2, as: Int16.self) == 0 {
                aborted.remove(header.producerID)  // the ABORT marker ends the aborted data
            }
            return false
        }
        return !(header.attributes.isTransactional && aborted.contains(header.producerID))
    }
}
