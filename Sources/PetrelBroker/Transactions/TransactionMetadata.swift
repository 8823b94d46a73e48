import NIOCore
import PetrelProtocol

/// Everything the coordinator knows of one transactional id: the producer id and epoch it hands out,
/// and the transaction under way. One record of the transaction log (key: the transactional id).
struct TransactionMetadata: Hashable, Sendable {
    var transactionalID: String
    var producerID: Int64
    var producerEpoch: Int16
    /// The epoch before the coordinator last bumped it (a timeout or a fence): a producer still at it
    /// may abort again, which is answered as done.
    var lastProducerEpoch: Int16 = -1
    var timeoutMs: Int32
    var state: TransactionState
    var partitions: Set<TopicPartition> = []
    /// Groups added with AddOffsetsToTxn; their TxnOffsetCommit offsets wait in `pendingOffsets`.
    var groups: Set<String> = []
    /// Consumer offsets sent in the transaction: committed with it, dropped if it aborts.
    var pendingOffsets: [String: [TopicPartition: CommittedOffset]] = [:]
    /// When the open transaction began (ms), -1 when none is open.
    var startTimestamp: Int64 = -1
    var lastUpdateTimestamp: Int64

    // MARK: - The transaction log's record value

    /// int16 version 0, int64 producer id, int16 epoch, int16 last epoch, int32 timeout, int8 state,
    /// int64 start, int64 last update, then the partitions (string topic, int32 partition), the groups
    /// (string) and the pending offsets (string group, then per partition: string topic, int32
    /// partition, int64 offset, int32 leader epoch, nullable string metadata, int64 commit time), each
    /// list preceded by an int32 count.
    func encode() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(Int16(0))
        buffer.writeInteger(producerID)
        buffer.writeInteger(producerEpoch)
        buffer.writeInteger(lastProducerEpoch)
        buffer.writeInteger(timeoutMs)
        buffer.writeInteger(state.rawValue)
        buffer.writeInteger(startTimestamp)
        buffer.writeInteger(lastUpdateTimestamp)
        buffer.writeInteger(Int32(partitions.count))
        for partition in partitions.sorted() {
            buffer.writeKafkaString(partition.topic, flexible: false)
            buffer.writeInteger(partition.partition)
        }
        buffer.writeInteger(Int32(groups.count))
        for group in groups.sorted() { buffer.writeKafkaString(group, flexible: false) }
        buffer.writeInteger(Int32(pendingOffsets.count))
        for (group, offsets) in pendingOffsets.sorted(by: { $0.key < $1.key }) {
            buffer.writeKafkaString(group, flexible: false)
            buffer.writeInteger(Int32(offsets.count))
            for (partition, committed) in offsets.sorted(by: { $0.key < $1.key }) {
                buffer.writeKafkaString(partition.topic, flexible: false)
                buffer.writeInteger(partition.partition)
                buffer.writeInteger(committed.offset)
                buffer.writeInteger(committed.leaderEpoch)
                buffer.writeKafkaNullableString(committed.metadata, flexible: false)
                buffer.writeInteger(committed.commitTimestamp)
            }
        }
        return buffer
    }

    static func decode(transactionalID: String, from value: ByteBuffer) throws -> TransactionMetadata {
        var buffer = value
        guard try buffer.readKafkaInteger(as: Int16.self) == 0 else {
            throw ProtocolError(.invalidValue, "transaction metadata version")
        }
        let producerID: Int64 = try buffer.readKafkaInteger()
        let epoch: Int16 = try buffer.readKafkaInteger()
        let lastEpoch: Int16 = try buffer.readKafkaInteger()
        let timeout: Int32 = try buffer.readKafkaInteger()
        guard let state = TransactionState(rawValue: try buffer.readKafkaInteger()) else {
            throw ProtocolError(.invalidValue, "transaction state")
        }
        var metadata = TransactionMetadata(
            transactionalID: transactionalID,
            producerID: producerID,
            producerEpoch: epoch,
            lastProducerEpoch: lastEpoch,
            timeoutMs: timeout,
            state: state,
            startTimestamp: try buffer.readKafkaInteger(),
            lastUpdateTimestamp: try buffer.readKafkaInteger()
        )
        for _ in 0..<(try Self.count(&buffer)) {
            metadata.partitions.insert(
                TopicPartition(try buffer.readKafkaString(flexible: false), try buffer.readKafkaInteger())
            )
        }
        for _ in 0..<(try Self.count(&buffer)) { metadata.groups.insert(try buffer.readKafkaString(flexible: false)) }
        for _ in 0..<(try Self.count(&buffer)) {
            let group = try buffer.readKafkaString(flexible: false)
            var offsets: [TopicPartition: CommittedOffset] = [:]
            for _ in 0..<(try Self.count(&buffer)) {
                let partition = TopicPartition(
                    try buffer.readKafkaString(flexible: false),
                    try buffer.readKafkaInteger()
                )
                offsets[partition] = CommittedOffset(
                    offset: try buffer.readKafkaInteger(),
                    leaderEpoch: try buffer.readKafkaInteger(),
                    metadata: try buffer.readKafkaNullableString(flexible: false),
                    commitTimestamp: try buffer.readKafkaInteger()
                )
            }
            metadata.pendingOffsets[group] = offsets
        }
        return metadata
    }

    private static func count(_ buffer: inout ByteBuffer) throws -> Int {
        let count = Int(try buffer.readKafkaInteger(as: Int32.self))
        guard count >= 0, count <= buffer.readableBytes else { throw ProtocolError(.invalidLength, "\(count) entries") }
        return count
    }
}
