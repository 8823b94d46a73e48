import PetrelProtocol

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A per-partition offset file in Kafka's text format:
///
///     0                  (format version)
///     2                  (number of entries)
///     orders 0 1742
///     orders 1 977
///
/// Written atomically (temp file, fsync, rename, folder fsync). A file that does not parse reads as
/// empty: each checkpoint is a hint that the logs can do without.
struct OffsetCheckpoint {
    /// Per partition, the offset below which its log was on stable storage: after an unclean shutdown,
    /// recovery scans each partition from the segment holding it onwards.
    static let recoveryPoints = OffsetCheckpoint(fileName: "recovery-point-offset-checkpoint")
    /// Per partition, its log start offset when DeleteRecords (or retention) moved it past the start of
    /// its first segment: records below it stay hidden after a restart.
    static let logStartOffsets = OffsetCheckpoint(fileName: "log-start-offset-checkpoint")

    /// Per compacted partition, the log cleaner's first dirty offset: how far it has cleaned.
    static let cleanerOffsets = OffsetCheckpoint(fileName: "cleaner-offset-checkpoint")

    let fileName: String

    func read(directory: String) -> [TopicPartition: Int64] {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: directory + "/" + fileName)) else { return [:] }
        let text = String(decoding: data, as: UTF8.self)
        let lines = text.split(separator: "\n")
        guard lines.count >= 2, lines[0] == "0", let count = Int(lines[1]), lines.count == count + 2 else { return [:] }
        var points: [TopicPartition: Int64] = [:]
        for line in lines.dropFirst(2) {
            let fields = line.split(separator: " ")
            guard fields.count == 3, let partition = Int32(fields[1]), let offset = Int64(fields[2]) else { return [:] }
            points[TopicPartition(String(fields[0]), partition)] = offset
        }
        return points
    }

    func write(_ points: [TopicPartition: Int64], directory: String) throws {
        var text = "0\n\(points.count)\n"
        for (partition, offset) in points.sorted(by: { $0.key < $1.key }) {
            text += "\(partition.topic) \(partition.partition) \(offset)\n"
        }
        try writeAtomically(Array(text.utf8), to: directory + "/" + fileName)
    }
}
