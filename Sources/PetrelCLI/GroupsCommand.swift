import ArgumentParser
import PetrelClient
import PetrelProtocol

struct GroupsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "groups",
        abstract: "List and describe consumer groups: members, committed offsets and lag.",
        subcommands: [List.self, Describe.self, ResetOffsets.self, DeleteOffsets.self, Delete.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the consumer groups.")
        @OptionGroup var connection: BootstrapOption

        func run() async throws {
            let groups: [GroupListing]
            do {
                groups = try await withAdmin(connection) { try await $0.listGroups() }
            } catch {
                throw fail("cannot list groups: \(reason(error))")
            }
            var table = Table("GROUP", "STATE", "PROTOCOL-TYPE")
            for group in groups {
                table.add([group.groupID, group.state, group.protocolType.isEmpty ? "-" : group.protocolType])
            }
            print(groups.isEmpty ? "no consumer groups" : table.rendered)
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a group's members, then per partition its committed offset, the log end and the lag."
        )
        @Argument(help: "The group id.") var group: String
        @OptionGroup var connection: BootstrapOption

        func run() async throws {
            let description: GroupDescription
            let lags: [PartitionLag]
            do {
                (description, lags) = try await withAdmin(connection) { admin in
                    (try await admin.describeGroup(group), try await admin.lag(group: group))
                }
            } catch {
                throw fail("cannot describe group \(group): \(reason(error))")
            }
            if description.state == "Dead" && lags.isEmpty {
                throw fail("group \(group) does not exist")
            }
            let protocolName = description.protocolName.isEmpty ? "-" : description.protocolName
            var heading =
                "GROUP \(description.groupID)  TYPE \(description.groupProtocol)  STATE \(description.state)"
                + "  PROTOCOL \(protocolName)  MEMBERS \(description.members.count)"
            if let epoch = description.groupEpoch, let assignmentEpoch = description.assignmentEpoch {
                heading += "  GROUP-EPOCH \(epoch)  ASSIGNMENT-EPOCH \(assignmentEpoch)"
            }
            print(heading)
            print("")
            if description.members.isEmpty {
                print("(no active members)")
            } else if description.groupProtocol == "consumer" {
                var members = Table("MEMBER", "INSTANCE", "CLIENT-ID", "HOST", "EPOCH", "ASSIGNMENT", "TARGET")
                for member in description.members {
                    members.add([
                        member.memberID, member.instanceID ?? "-", member.clientID, member.host,
                        member.memberEpoch.map(String.init) ?? "-", Self.summary(member.assignment),
                        Self.summary(member.targetAssignment ?? []),
                    ])
                }
                print(members.rendered)
            } else {
                var members = Table("MEMBER", "CLIENT-ID", "HOST", "ASSIGNMENT")
                for member in description.members {
                    members.add([member.memberID, member.clientID, member.host, Self.summary(member.assignment)])
                }
                print(members.rendered)
            }
            print("")
            var table = Table("TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG")
            for lag in lags {
                table.add([
                    lag.partition.topic, String(lag.partition.partition), lag.committed.map(String.init) ?? "-",
                    String(lag.logEndOffset), lag.lag.map(String.init) ?? "-",
                ])
            }
            print(lags.isEmpty ? "(no committed offsets)" : table.rendered)
        }

        /// "orders:0,1 payments:3"
        static func summary(_ partitions: [TopicPartition]) -> String {
            if partitions.isEmpty { return "-" }
            return partitions.groupedByTopic().map { topic, numbers in
                "\(topic):" + numbers.map(String.init).joined(separator: ",")
            }.joined(separator: " ")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a group that has no members, and its offsets."
        )
        @Argument(help: "The group id.") var group: String
        @OptionGroup var connection: BootstrapOption

        func run() async throws {
            do {
                try await withAdmin(connection) { try await $0.deleteGroup(group) }
            } catch {
                throw fail("cannot delete group \(group): \(reason(error))")
            }
            print("deleted group \(group)")
        }
    }
}
