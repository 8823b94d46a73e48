import PetrelProtocol
import PetrelStorage

#if canImport(Glibc)
import Glibc
#endif

/// DescribeLogDirs (35), v0–4: the one data directory, the size of every partition (or of those asked
/// for) in it, and (v4) the volume's total and usable bytes. One broker has no replicas to lag behind.
struct DescribeLogDirsHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...4
    let broker: BrokerState

    func handle(_ request: DescribeLogDirsRequest, context: RequestContext) async throws -> DescribeLogDirsResponse? {
        let wanted: [String: Set<Int32>]? = request.topics.map { topics in
            Dictionary(topics.map { ($0.topic, Set($0.partitions)) }, uniquingKeysWith: { $0.union($1) })
        }
        var topics: [DescribeLogDirsResponse.DescribeLogDirsResult.DescribeLogDirsTopic] = []
        for topic in broker.logs.allTopics where wanted == nil || wanted?[topic.name] != nil {
            let logs = broker.logs.partitions(topic: topic.name) ?? []
            let partitions = logs.filter { wanted?[topic.name]?.contains($0.partition) ?? true }.map {
                DescribeLogDirsResponse.DescribeLogDirsResult.DescribeLogDirsTopic.DescribeLogDirsPartition(
                    partitionIndex: $0.partition,
                    partitionSize: Int64($0.sizeInBytes),
                    offsetLag: 0,
                    isFutureKey: false
                )
            }
            if !partitions.isEmpty { topics.append(.init(name: topic.name, partitions: partitions)) }
        }
        let (total, usable) = Self.volume(of: broker.configuration.dataDirectory)
        let directory = DescribeLogDirsResponse.DescribeLogDirsResult(
            errorCode: ErrorCode.none,
            logDir: Self.absolute(broker.configuration.dataDirectory),
            topics: topics,
            totalBytes: total,
            usableBytes: usable
        )
        return DescribeLogDirsResponse(throttleTimeMs: 0, errorCode: ErrorCode.none, results: [directory])
    }

    /// The file system's size and the bytes an unprivileged writer may still use; -1 if unknown.
    private static func volume(of path: String) -> (total: Int64, usable: Int64) {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return (-1, -1) }
        let block = Int64(info.f_frsize)
        return (Int64(info.f_blocks) * block, Int64(info.f_bavail) * block)
    }

    private static func absolute(_ path: String) -> String {
        guard !path.hasPrefix("/"), let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
