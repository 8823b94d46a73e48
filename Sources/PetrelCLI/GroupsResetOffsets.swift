import ArgumentParser
import PetrelClient
import PetrelProtocol

extension GroupsCommand {
    /// Moves a group's committed offsets, as kafka-consumer-groups --reset-offsets does: a plan by
    /// default, applied with --execute. The group must have no live members.
    struct ResetOffsets: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reset-offsets",
            abstract:
                "Move a group's committed offsets (shows the plan; --execute applies it). The group must have no members."
        )

        @Argument(help: "The group id.") var group: String
        @Option(help: "The topic whose offsets move.") var topic: String
        @Flag(help: "To each partition's first offset.") var toEarliest = false
        @Flag(help: "To each partition's end.") var toLatest = false
        @Option(help: "To this offset in every partition.") var toOffset: Int64?
        @Option(help: "To the first record at or after this time (ms since the epoch).") var toTimestamp: Int64?
        @Option(help: "Move by this many records (negative: back).") var shiftBy: Int64?
        @Flag(help: "Commit the new offsets (without it, only show them).") var execute = false
        @OptionGroup var connection: BootstrapOption

        func validate() throws {
            let chosen = [toEarliest, toLatest, toOffset != nil, toTimestamp != nil, shiftBy != nil].filter { $0 }.count
            guard chosen == 1 else {
                throw ValidationError(
                    "choose exactly one of --to-earliest, --to-latest, --to-offset, --to-timestamp, --shift-by."
                )
            }
        }

        func run() async throws {
            let plan: [(TopicPartition, Int64?, Int64)]
            do {
                plan = try await withAdmin(connection) { admin in
                    let description = try await admin.describeGroup(group)
                    guard description.members.isEmpty else {
                        throw KafkaClientError.invalidArgument(
                            "group \(group) has \(description.members.count) live members; stop them first"
                        )
                    }
                    let info = try await admin.describeTopic(topic)
                    let partitions = (0..<Int32(info.partitionCount)).map { TopicPartition(topic, $0) }
                    let committed = try await admin.committedOffsets(group: group)
                    let starts = try await admin.startOffsets(partitions)
                    let ends = try await admin.endOffsets(partitions)
                    var targets: [TopicPartition: Int64] = [:]
                    if toEarliest { targets = starts }
                    if toLatest { targets = ends }
                    if let toOffset { for partition in partitions { targets[partition] = toOffset } }
                    if let toTimestamp {
                        let found = try await admin.offsets(forTimestamp: toTimestamp, partitions: partitions)
                        for partition in partitions {
                            targets[partition] = found[partition].flatMap { $0 } ?? ends[partition]
                        }
                    }
                    if let shiftBy {
                        for partition in partitions {
                            targets[partition] = (committed[partition] ?? starts[partition] ?? 0) + shiftBy
                        }
                    }
                    // Offsets outside the log would only make consumers reset: keep them inside.
                    let plan = partitions.map { partition -> (TopicPartition, Int64?, Int64) in
                        let low = starts[partition] ?? 0
                        let high = ends[partition] ?? 0
                        return (partition, committed[partition], min(max(targets[partition] ?? low, low), high))
                    }
                    if execute {
                        try await admin.commitOffsets(
                            group: group,
                            Dictionary(uniqueKeysWithValues: plan.map { ($0.0, $0.2) })
                        )
                    }
                    return plan
                }
            } catch {
                throw fail("cannot reset the offsets of group \(group): \(reason(error))")
            }
            var table = Table("TOPIC", "PARTITION", "CURRENT", "NEW")
            for (partition, current, new) in plan {
                table.add([partition.topic, String(partition.partition), current.map(String.init) ?? "-", String(new)])
            }
            print(table.rendered)
            print(execute ? "\ncommitted the new offsets" : "\n(a plan only: add --execute to commit it)")
        }
    }
}
