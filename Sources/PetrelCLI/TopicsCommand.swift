import ArgumentParser
import PetrelClient
import PetrelProtocol

struct TopicsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topics",
        abstract: "Create, list, describe, alter and delete topics; add partitions; delete records.",
        subcommands: [
            Create.self, List.self, Describe.self, Alter.self, AddPartitions.self, DeleteRecords.self, Delete.self,
        ]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a topic.")
        @Argument(help: "The topic name.") var topic: String
        @Option(help: "Number of partitions (default: the broker's).") var partitions: Int32 = -1
        @Option(help: "Replication factor (default: the broker's).") var replicationFactor: Int16 = -1
        @Option(
            name: .customLong("config"),
            help: "A topic config, NAME=VALUE (repeatable), e.g. retention.ms=86400000."
        )
        var configs: [String] = []
        @OptionGroup var connection: BootstrapOption

        func validate() throws {
            if let reason = TopicName.invalidityReason(topic) { throw ValidationError("\(reason).") }
            for config in configs where !config.contains("=") {
                throw ValidationError("--config must be NAME=VALUE, got \(config).")
            }
        }

        func run() async throws {
            var settings: [String: String] = [:]
            for config in configs {
                let parts = config.split(separator: "=", maxSplits: 1)
                settings[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            }
            do {
                try await withAdmin(connection) {
                    try await $0.createTopic(
                        topic,
                        partitions: partitions,
                        replicationFactor: replicationFactor,
                        configs: settings
                    )
                }
            } catch {
                throw fail("cannot create topic \(topic): \(reason(error))")
            }
            print("created topic \(topic)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the topics.")
        @OptionGroup var connection: BootstrapOption

        func run() async throws {
            let topics: [TopicInfo]
            do {
                topics = try await withAdmin(connection) { try await $0.listTopics() }
            } catch {
                throw fail("cannot list topics: \(reason(error))")
            }
            var table = Table("TOPIC", "PARTITIONS")
            for topic in topics { table.add([topic.name, String(topic.partitionCount)]) }
            print(topics.isEmpty ? "no topics" : table.rendered)
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a topic's partitions with their leaders and offsets, and its configs."
        )
        @Argument(help: "The topic name.") var topic: String
        @OptionGroup var connection: BootstrapOption

        func run() async throws {
            let (info, starts, ends, configs) = try await describe()
            print("TOPIC \(info.name)  ID \(info.id)  PARTITIONS \(info.partitionCount)")
            print("")
            var table = Table("PARTITION", "LEADER", "START", "END", "RECORDS")
            for index in 0..<Int32(info.partitionCount) {
                let partition = TopicPartition(topic, index)
                let start = starts[partition] ?? 0
                let end = ends[partition] ?? 0
                table.add([
                    String(index), String(info.leaders[Int(index)]), String(start), String(end), String(end - start),
                ])
            }
            print(table.rendered)
            print("")
            print(Self.configTable(configs))
        }

        private func describe() async throws -> (
            TopicInfo, [TopicPartition: Int64], [TopicPartition: Int64], [ConfigValue]
        ) {
            do {
                return try await withAdmin(connection) { admin in
                    let info = try await admin.describeTopic(topic)
                    let partitions = (0..<Int32(info.partitionCount)).map { TopicPartition(topic, $0) }
                    return (
                        info, try await admin.startOffsets(partitions), try await admin.endOffsets(partitions),
                        try await admin.topicConfigs(topic)
                    )
                }
            } catch {
                throw fail("cannot describe topic \(topic): \(reason(error))")
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a topic and all its records.")
        @Argument(help: "The topic name.") var topic: String
        @OptionGroup var connection: BootstrapOption

        func run() async throws {
            do {
                try await withAdmin(connection) { try await $0.deleteTopic(topic) }
            } catch {
                throw fail("cannot delete topic \(topic): \(reason(error))")
            }
            print("deleted topic \(topic)")
        }
    }
}
