import PetrelProtocol

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `recovery-point-offset-checkpoint`: per partition, the offset below which its log was on stable
/// storage when the file was written. Kafka's text format:
///
///     0                  (format version)
///     2                  (number of entries)
///     orders 0 1742
///     orders 1 977
///
/// Written atomically (temp file, fsync, rename). After an unclean shutdown, recovery scans each
/// partition from the segment holding its recovery point onwards.
enum RecoveryPointCheckpoint {
    static let fileName = "recovery-point-offset-checkpoint"

    static func read(directory: String) -> [TopicPartition: Int64] {
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

    static func write(_ points: [TopicPartition: Int64], directory: String) throws {
        var text = "0\n\(points.count)\n"
        for (partition, offset) in points.sorted(by: { $0.key < $1.key }) {
            text += "\(partition.topic) \(partition.partition) \(offset)\n"
        }
        try writeAtomically(Array(text.utf8), to: directory + "/" + fileName)
    }
}
