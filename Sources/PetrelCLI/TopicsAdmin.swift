import ArgumentParser
import PetrelClient
import PetrelProtocol

/// `petrel topics alter`, `add-partitions` and `delete-records`: changing a live topic.
extension TopicsCommand {
    struct Alter: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set or remove a topic's configs; the others stay as they are. In force at once."
        )
        @Argument(help: "The topic name.") var topic: String
        @Option(name: .customLong("config"), help: "A topic config to set, NAME=VALUE (repeatable).")
        var configs: [String] = []
        @Option(name: .customLong("delete-config"), help: "A topic config to remove, back to its default (repeatable).")
        var deletions: [String] = []
        @Flag(help: "Only check that the broker would accept the change.") var validateOnly = false
        @OptionGroup var connection: BootstrapOption

        func validate() throws {
            if configs.isEmpty && deletions.isEmpty { throw ValidationError("give --config or --delete-config.") }
            for config in configs where !config.contains("=") {
                throw ValidationError("--config must be NAME=VALUE, got \(config).")
            }
        }

        func run() async throws {
            var changes: [String: String?] = [:]
            for config in configs {
                let parts = config.split(separator: "=", maxSplits: 1)
                changes[String(parts[0])] = .some(parts.count > 1 ? String(parts[1]) : "")
            }
            for name in deletions { changes[name] = .some(nil) }
            do {
                try await withAdmin(connection) {
                    try await $0.alterTopicConfigs(topic, changes, validateOnly: validateOnly)
                }
            } catch {
                throw fail("cannot alter topic \(topic): \(reason(error))")
            }
            print(validateOnly ? "the broker would accept this change to \(topic)" : "altered topic \(topic)")
        }
    }

    struct AddPartitions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-partitions",
            abstract: "Grow a topic to more partitions (keyed records then map to other partitions)."
        )
        @Argument(help: "The topic name.") var topic: String
        @Option(help: "The new number of partitions, in all.") var count: Int32
        @OptionGroup var connection: BootstrapOption

        func validate() throws {
            if count < 1 { throw ValidationError("--count must be at least 1.") }
        }

        func run() async throws {
            do {
                try await withAdmin(connection) { try await $0.createPartitions(topic, count: count) }
            } catch {
                throw fail("cannot add partitions to \(topic): \(reason(error))")
            }
            print("topic \(topic) has \(count) partitions")
        }
    }

    struct DeleteRecords: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "delete-records",
            abstract: "Delete a partition's records below an offset (skip a poison record, free space)."
        )
        @Argument(help: "The topic name.") var topic: String
        @Option(help: "The partition.") var partition: Int32
        @Option(help: "Delete every record below this offset; -1 deletes them all.") var before: Int64
        @OptionGroup var connection: BootstrapOption

        func validate() throws {
            if before < -1 { throw ValidationError("--before must be an offset, or -1 for all records.") }
        }

        func run() async throws {
            let start: Int64
            do {
                start = try await withAdmin(connection) {
                    try await $0.deleteRecords(TopicPartition(topic, partition), before: before)
                }
            } catch {
                throw fail("cannot delete records of \(topic)-\(partition): \(reason(error))")
            }
            print("\(topic)-\(partition) now starts at offset \(start)")
        }
    }
}

extension TopicsCommand.Describe {
    /// The topic's configs that are not Kafka's defaults, with where each comes from.
    static func configTable(_ configs: [ConfigValue]) -> String {
        var table = Table("CONFIG", "VALUE", "SOURCE")
        let shown = configs.filter { $0.source != .defaultConfig }
        for config in shown {
            table.add([config.name, config.isSensitive ? "(sensitive)" : config.value ?? "-", "\(config.source)"])
        }
        let rest = configs.count - shown.count
        return table.rendered + "\n(\(rest) more at Kafka's defaults: petrel configs describe --topic NAME)"
    }
}
