import NIOCore
import PetrelProtocol

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `<offset>.snapshot`: the idempotent producers of a partition as they stood at that offset, so a
/// restart replays only the batches after it. Written when a segment rolls and at a clean shutdown;
/// the two newest are kept. All integers big-endian:
///
///     int16 version = 2, int32 producer count, then per producer:
///         int64 producer id, int16 epoch, int64 last timestamp,
///         int64 first offset of its open transaction (-1: none; absent in version 1), int8 batch count,
///         per batch: int32 first sequence, int32 last sequence, int64 first offset, int64 last offset
///     uint32 CRC-32C of everything before it
enum ProducerSnapshot {
    static let suffix = ".snapshot"

    static func fileName(offset: Int64) -> String {
        LogSegment.fileName(baseOffset: offset, suffix: suffix)
    }

    static func write(_ states: ProducerStates, offset: Int64, directory: String) throws {
        var buffer = ByteBuffer()
        buffer.writeInteger(Int16(2))
        buffer.writeInteger(Int32(states.entries.count))
        for (id, entry) in states.entries.sorted(by: { $0.key < $1.key }) {
            buffer.writeInteger(id)
            buffer.writeInteger(entry.epoch)
            buffer.writeInteger(entry.lastTimestamp)
            buffer.writeInteger(entry.currentTransactionFirstOffset ?? -1)
            buffer.writeInteger(Int8(entry.batches.count))
            for batch in entry.batches {
                buffer.writeInteger(batch.firstSequence)
                buffer.writeInteger(batch.lastSequence)
                buffer.writeInteger(batch.firstOffset)
                buffer.writeInteger(batch.lastOffset)
            }
        }
        buffer.writeInteger(CRC32C.checksum(buffer.readableBytesView))
        try writeAtomically(Array(buffer.readableBytesView), to: directory + "/" + fileName(offset: offset))
    }

    static func read(offset: Int64, directory: String) -> ProducerStates? {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: directory + "/" + fileName(offset: offset))),
            data.count >= 10
        else { return nil }
        var buffer = ByteBuffer(bytes: data)
        let body = buffer.getSlice(at: 0, length: buffer.readableBytes - 4)!
        guard buffer.getInteger(at: buffer.writerIndex - 4, as: UInt32.self) == CRC32C.checksum(body.readableBytesView)
        else {
            return nil
        }
        do {
            let version = try buffer.readKafkaInteger(as: Int16.self)
            guard version == 1 || version == 2 else { return nil }
            var entries: [Int64: ProducerEntry] = [:]
            for _ in 0..<(try buffer.readKafkaInteger(as: Int32.self)) {
                let id = try buffer.readKafkaInteger(as: Int64.self)
                let epoch = try buffer.readKafkaInteger(as: Int16.self)
                let timestamp = try buffer.readKafkaInteger(as: Int64.self)
                let transactionStart = version >= 2 ? try buffer.readKafkaInteger(as: Int64.self) : -1
                var batches: [ProducerEntry.Batch] = []
                for _ in 0..<(try buffer.readKafkaInteger(as: Int8.self)) {
                    batches.append(
                        .init(
                            firstSequence: try buffer.readKafkaInteger(),
                            lastSequence: try buffer.readKafkaInteger(),
                            firstOffset: try buffer.readKafkaInteger(),
                            lastOffset: try buffer.readKafkaInteger()
                        )
                    )
                }
                entries[id] = ProducerEntry(
                    epoch: epoch,
                    batches: batches,
                    lastTimestamp: timestamp,
                    currentTransactionFirstOffset: transactionStart >= 0 ? transactionStart : nil
                )
            }
            return ProducerStates(entries: entries)
        } catch {
            return nil
        }
    }

    /// The offsets of the snapshots in a partition folder, newest first.
    static func offsets(in directory: String) -> [Int64] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name in
            guard name.hasSuffix(suffix), name.count == 20 + suffix.count else { return nil }
            return Int64(name.prefix(20))
        }.sorted(by: >)
    }

    /// Deletes snapshots past the log's end (the log was cut back) and all but the newest `keep`.
    static func prune(directory: String, logEndOffset: Int64, keep: Int = 2) {
        var kept = 0
        for offset in offsets(in: directory) {
            if offset > logEndOffset || kept >= keep {
                unlinkFile(directory + "/" + fileName(offset: offset))
            } else {
                kept += 1
            }
        }
    }
}
