import ArgumentParser

@main
struct Petrel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "petrel",
        abstract: "A Kafka-compatible, log-structured message broker and its tools.",
        subcommands: [
            BrokerCommand.self, ProduceCommand.self, ConsumeCommand.self, TopicsCommand.self, GroupsCommand.self, UsersCommand.self,
            PerfCommand.self,
        ]
    )
}
