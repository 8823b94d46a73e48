import ArgumentParser
import PetrelClient

/// `petrel configs describe`: every config of a topic, or the broker's settings under Kafka's names.
struct ConfigsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "configs",
        abstract: "Show topic configs or the broker's settings, with where each value comes from.",
        subcommands: [Describe.self]
    )

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show every config of a topic, or of the broker.")
        @Option(help: "The topic whose configs to show.") var topic: String?
        @Flag(help: "Show the broker's settings instead.") var broker = false
        @OptionGroup var connection: BootstrapOption

        func validate() throws {
            if (topic == nil) == !broker { throw ValidationError("give either --topic NAME or --broker.") }
        }

        func run() async throws {
            let configs: [ConfigValue]
            do {
                configs = try await withAdmin(connection) { admin in
                    if let topic { return try await admin.topicConfigs(topic) }
                    return try await admin.brokerConfigs()
                }
            } catch {
                throw fail(
                    "cannot describe the configs of \(topic.map { "topic \($0)" } ?? "the broker"): \(reason(error))"
                )
            }
            var table = Table("CONFIG", "VALUE", "SOURCE", "READ-ONLY")
            for config in configs {
                table.add([
                    config.name, config.isSensitive ? "(sensitive)" : config.value ?? "-", "\(config.source)",
                    config.isReadOnly ? "yes" : "no",
                ])
            }
            print(table.rendered)
        }
    }
}
