import ArgumentParser
import PetrelClient
import PetrelProtocol

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

struct TransactionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transactions",
        abstract: "List and describe transactional ids and their transactions: hunting hung transactions.",
        subcommands: [List.self, Describe.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List every transactional id the broker coordinates, with its producer id and state."
        )
        @Option(help: "Only transactions in this state (Kafka's names: Ongoing, CompleteCommit, ...); repeatable.")
        var state: [String] = []
        @OptionGroup var connection: BootstrapOption

        func run() async throws {
            let listings: [TransactionListing]
            do {
                listings = try await withAdmin(connection) { try await $0.listTransactions(states: state) }
            } catch {
                throw fail("cannot list transactions: \(reason(error))")
            }
            var table = Table("TRANSACTIONAL-ID", "PRODUCER-ID", "STATE")
            for listing in listings {
                table.add([listing.transactionalID, String(listing.producerID), listing.state])
            }
            print(listings.isEmpty ? "no transactional ids" : table.rendered)
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Show a transactional id's state, producer, timeout, and its open transaction's age and partitions."
        )
        @Argument(help: "The transactional id.") var transactionalID: String
        @OptionGroup var connection: BootstrapOption

        func run() async throws {
            let description: TransactionDescription
            do {
                description = try await withAdmin(connection) { try await $0.describeTransaction(transactionalID) }
            } catch {
                throw fail("cannot describe transactional id \(transactionalID): \(reason(error))")
            }
            print(
                "TRANSACTIONAL-ID \(description.transactionalID)  STATE \(description.state)  PRODUCER \(description.producerID) (epoch \(description.producerEpoch))  TIMEOUT \(description.timeoutMs) ms"
            )
            if let start = description.startTime {
                let ageMs = Int64(Date().timeIntervalSince1970 * 1000) - start
                print("OPEN FOR \(ageMs) ms (of \(description.timeoutMs) ms before the broker aborts it)")
            }
            let partitions = description.partitions.map { "\($0.topic)-\($0.partition)" }
            print("PARTITIONS " + (partitions.isEmpty ? "-" : partitions.joined(separator: " ")))
        }
    }
}
