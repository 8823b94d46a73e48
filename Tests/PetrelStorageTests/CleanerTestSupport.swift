import Foundation
import NIOCore
import PetrelProtocol

@testable import PetrelStorage

/// A keyed update for cleaner tests: nil value is a tombstone.
struct Update {
    var key: String
    var value: String?
}

extension PartitionLog {
    /// Appends the updates as one batch and returns its base offset.
    @discardableResult
    func appendUpdates(
        _ updates: [Update],
        timestamp: Int64 = 1_700_000_000_000,
        compression: CompressionCodec = .none,
        producerID: Int64 = -1,
        baseSequence: Int32 = -1
    ) throws -> Int64 {
        var builder = RecordBatchBuilder(
            compression: compression,
            producerID: producerID,
            producerEpoch: producerID >= 0 ? 0 : -1,
            baseSequence: baseSequence
        )
        for (index, update) in updates.enumerated() {
            builder.append(
                key: ByteBuffer(string: update.key),
                value: update.value.map { ByteBuffer(string: $0) },
                timestamp: timestamp + Int64(index)
            )
        }
        let batch = try builder.build()
        let header = try RecordBatchValidator.validateProduced(batch)
        return try append(batch, header: header, now: timestamp).baseOffset
    }

    /// The records as a table: each key's last value as read from the log (nil: a tombstone read).
    func table() throws -> [String: String?] {
        var table: [String: String?] = [:]
        for record in try readAll(from: logStartOffset) {
            let key = String(buffer: record.key!)
            table[key] = .some(record.value.map { String(buffer: $0) })
        }
        return table
    }

    /// Appends `update` until the active segment rolls, so that everything before is cleanable.
    func appendUntilRolled(_ update: Update) throws {
        let active = segmentBaseOffsets.last!
        while segmentBaseOffsets.last! == active { try appendUpdates([update]) }
    }

    /// Every batch header in the log, through the fetch path.
    func batchHeaders() throws -> [RecordBatchHeader] {
        var headers: [RecordBatchHeader] = []
        var next = logStartOffset
        while next < logEndOffset {
            guard let slice = try read(from: next, maxBytes: 1 << 20).slice else { break }
            let batches = try RecordBatchDecoder.decodeBatches(try slice.readBytes())
            headers += batches.map(\.header).filter { $0.nextOffset > next }
            next = batches.last!.header.nextOffset
        }
        return headers
    }
}

/// A compacting log config with small segments so that tests roll often.
func compactedConfig(segmentBytes: Int = 400, deleteRetentionMs: Int64 = 86_400_000) -> LogConfig {
    var config = LogConfig()
    config.compacts = true
    config.deletesByRetention = false
    config.segmentBytes = segmentBytes
    config.minCleanableDirtyRatio = 0
    config.deleteRetentionMs = deleteRetentionMs
    return config
}
