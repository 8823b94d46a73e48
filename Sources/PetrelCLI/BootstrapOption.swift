import ArgumentParser
import PetrelClient

/// `--bootstrap HOST:PORT[,HOST:PORT...]`, shared by the client commands.
struct BootstrapOption: ParsableArguments {
    @Option(name: .long, help: "Broker(s) to connect to, HOST:PORT, comma-separated.")
    var bootstrap: String = "127.0.0.1:9092"

    func addresses() throws -> [BrokerAddress] {
        let parts = bootstrap.split(separator: ",").map { String($0).trimmingSpaces() }
        let addresses = parts.compactMap(BrokerAddress.init)
        guard !addresses.isEmpty, addresses.count == parts.count else {
            throw ValidationError("--bootstrap must be HOST:PORT[,HOST:PORT...], got \(bootstrap).")
        }
        return addresses
    }
}

extension String {
    func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}

/// Runs `body` with an admin client for the bootstrap servers, closing it afterwards.
func withAdmin<Result>(_ connection: BootstrapOption, _ body: (KafkaAdmin) async throws -> Result) async throws -> Result {
    let admin = KafkaAdmin(bootstrap: try connection.addresses())
    do {
        let result = try await body(admin)
        await admin.close()
        return result
    } catch {
        await admin.close()
        throw error
    }
}
