import ArgumentParser
import PetrelClient
import PetrelProtocol

extension GroupsCommand {
    /// `petrel groups delete-offsets`: forget where a group got to in a topic (all its partitions, or one).
    struct DeleteOffsets: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "delete-offsets",
            abstract: "Delete a group's committed offsets for a topic (refused while a member subscribes to it)."
        )
        @Argument(help: "The group id.") var group: String
        @Option(help: "The topic.") var topic: String
        @Option(help: "Only this partition (default: every partition of the topic).") var partition: Int32?
        @OptionGroup var connection: BootstrapOption

        func run() async throws {
            do {
                try await withAdmin(connection) { admin in
                    let partitions: [TopicPartition]
                    if let partition {
                        partitions = [TopicPartition(topic, partition)]
                    } else {
                        let count = try await admin.describeTopic(topic).partitionCount
                        partitions = (0..<Int32(count)).map { TopicPartition(topic, $0) }
                    }
                    try await admin.deleteOffsets(group: group, partitions)
                }
            } catch {
                throw fail("cannot delete the offsets of group \(group) for \(topic): \(reason(error))")
            }
            print("deleted the offsets of group \(group) for \(topic)" + (partition.map { "-\($0)" } ?? ""))
        }
    }
}
