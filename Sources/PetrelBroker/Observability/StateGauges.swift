import PetrelProtocol
import PetrelStorage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Gauges that describe state rather than traffic: each partition's log start offset, log end offset,
/// size, distance to its last stable offset and (compacted ones) dirty ratio, the open transactions,
/// the data directory's space, and each consumer group's members, epoch, committed offsets and lag.
///
/// They are read from the logs and the coordinators when a scrape asks, and written straight into the
/// Prometheus text: never older than the scrape, and costing nothing between scrapes. They are not
/// registered as swift-metrics gauges because a broker holds tens of thousands of partitions, and
/// the registry copies its table for each new series, which made creating 10,000 partitions
/// quadratic. Series of deleted topics and groups are gone from the next scrape.
struct StateGauges: Sendable {
    let logs: LogManager
    let groups: GroupCoordinator
    let transactions: TransactionCoordinator

    /// Appends every state gauge, one family after another, in the Prometheus text format.
    func render(into output: inout [UInt8]) {
        var logStart = GaugeFamily("petrel_log_start_offset", help: "First offset still stored")
        var logEnd = GaugeFamily("petrel_log_end_offset", help: "Offset the next record will get")
        var size = GaugeFamily("petrel_log_size_bytes", help: "Bytes in the partition's segment files")
        var stableLag = GaugeFamily(
            "petrel_last_stable_offset_lag",
            help: "Log end offset minus last stable offset (records an open transaction holds back)"
        )
        var dirtyRatio = GaugeFamily(
            "petrel_log_cleaner_dirty_ratio",
            help: "Dirty share of a compacted partition's cleanable log"
        )
        let partitions = logs.allPartitions
        var logEnds: [TopicPartition: Int64] = [:]
        logEnds.reserveCapacity(partitions.count)
        let now = wallClockMillis()
        for log in partitions {
            let labels = [("topic", log.topic), ("partition", String(log.partition))]
            let end = log.logEndOffset
            logEnds[TopicPartition(log.topic, log.partition)] = end
            logStart.add(labels, log.logStartOffset)
            logEnd.add(labels, end)
            size.add(labels, log.sizeInBytes)
            // Records read_committed consumers cannot see yet: an open transaction holds them back.
            stableLag.add(labels, end - log.lastStableOffset)
            if let section = log.cleanableSection(now: now) {
                dirtyRatio.add(labels, section.dirtyRatio)
            }
        }

        // The data directory's file system: writes fail with KAFKA_STORAGE_ERROR once it is full, and
        // succeed again as soon as space is freed (no restart needed).
        var free = GaugeFamily("petrel_data_dir_free_bytes", help: "Space left on the data directory's file system")
        var total = GaugeFamily("petrel_data_dir_size_bytes", help: "Size of the data directory's file system")
        var space = statvfs()
        if statvfs(logs.directory, &space) == 0 {
            free.add([], Double(space.f_bavail) * Double(space.f_frsize))
            total.add([], Double(space.f_blocks) * Double(space.f_frsize))
        }

        var openTransactions = GaugeFamily("petrel_transactions_open", help: "Transactions in the Ongoing state")
        openTransactions.add([], transactions.allTransactions.filter { $0.state == .ongoing }.count)

        var members = GaugeFamily("petrel_consumer_group_members", help: "Live members of each group")
        for (group, count) in groups.memberCounts() {
            members.add([("group", group)], count)
        }
        var epochs = GaugeFamily(
            "petrel_consumer_group_epoch",
            help: "A classic group's generation, a consumer-protocol group's group epoch"
        )
        for (group, protocolName, epoch) in groups.epochs() {
            epochs.add([("group", group), ("protocol", protocolName)], epoch)
        }
        var committedOffsets = GaugeFamily(
            "petrel_consumer_group_committed_offset",
            help: "The group's committed offset"
        )
        var lag = GaugeFamily("petrel_consumer_group_lag", help: "Log end offset minus committed offset")
        // Lag exists wherever an offset is committed, whether or not the group has live members:
        // a group whose workers all died is exactly the one whose lag matters.
        for (group, committed) in groups.offsets.allCommitted {
            for (partition, position) in committed {
                guard let end = logEnds[partition] else { continue }  // the topic is being deleted
                let labels = [("group", group), ("topic", partition.topic), ("partition", String(partition.partition))]
                committedOffsets.add(labels, position.offset)
                lag.add(labels, max(0, end - position.offset))
            }
        }

        for family in [
            logStart, logEnd, size, stableLag, dirtyRatio, free, total, openTransactions, members, epochs,
            committedOffsets, lag,
        ] {
            family.emit(into: &output)
        }
    }
}

/// The samples of one gauge, rendered as they are added: `name{label="value",...} sample`.
private struct GaugeFamily {
    private let name: String
    private let help: String
    private var samples: [UInt8] = []

    init(_ name: String, help: String) {
        self.name = name
        self.help = help
    }

    mutating func add(_ labels: [(String, String)], _ value: some BinaryInteger) {
        addLabels(labels)
        samples.append(contentsOf: String(value).utf8)
        samples.append(UInt8(ascii: "\n"))
    }

    mutating func add(_ labels: [(String, String)], _ value: Double) {
        addLabels(labels)
        samples.append(contentsOf: value.description.utf8)
        samples.append(UInt8(ascii: "\n"))
    }

    private mutating func addLabels(_ labels: [(String, String)]) {
        samples.append(contentsOf: name.utf8)
        guard !labels.isEmpty else {
            samples.append(UInt8(ascii: " "))
            return
        }
        samples.append(UInt8(ascii: "{"))
        for (index, (label, value)) in labels.enumerated() {
            if index > 0 { samples.append(UInt8(ascii: ",")) }
            samples.append(contentsOf: label.utf8)
            samples.append(contentsOf: #"=""#.utf8)
            Self.appendEscaped(value, to: &samples)
            samples.append(UInt8(ascii: "\""))
        }
        samples.append(contentsOf: "} ".utf8)
    }

    /// Label values escape backslash, double quote and line feed; group ids may hold any of them.
    private static func appendEscaped(_ value: String, to buffer: inout [UInt8]) {
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): buffer.append(contentsOf: #"\\"#.utf8)
            case UInt8(ascii: "\""): buffer.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\n"): buffer.append(contentsOf: #"\n"#.utf8)
            default: buffer.append(byte)
            }
        }
    }

    /// A family without samples writes nothing: no TYPE line for a series that does not exist.
    func emit(into output: inout [UInt8]) {
        guard !samples.isEmpty else { return }
        output.append(contentsOf: "# HELP \(name) \(help)\n# TYPE \(name) gauge\n".utf8)
        output.append(contentsOf: samples)
    }
}
