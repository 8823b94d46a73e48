import ArgumentParser
import Foundation
import NIOSSL
import PetrelClient
import PetrelProtocol

/// `--bootstrap HOST:PORT[,HOST:PORT...]` and how to log in, shared by the client commands.
struct BootstrapOption: ParsableArguments {
    @Option(name: .long, help: "Broker(s) to connect to, HOST:PORT, comma-separated.")
    var bootstrap: String = "127.0.0.1:9092"

    @Option(help: "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, as the broker's listener.")
    var securityProtocol: String = "PLAINTEXT"

    @Option(help: "SCRAM-SHA-256 or PLAIN (SASL listeners).")
    var saslMechanism: String = "SCRAM-SHA-256"

    @Option(help: "The user to log in as (SASL listeners); the password is read from PETREL_SASL_PASSWORD.")
    var saslUser: String?

    @Option(
        help:
            "PEM file of the certificate authority that signed the broker's certificate (TLS listeners; default: the system's)."
    )
    var tlsCa: String?

    func validate() throws {
        _ = try security()
    }

    /// TLS and SASL as the flags and PETREL_SASL_PASSWORD say.
    func security() throws -> KafkaClientSecurity {
        guard let chosen = SecurityProtocol(rawValue: securityProtocol.uppercased()) else {
            throw ValidationError(
                "--security-protocol must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, got \(securityProtocol)."
            )
        }
        let name = chosen.rawValue
        var tls: TLSConfiguration?
        if chosen.usesTLS {
            var configuration = TLSConfiguration.makeClientConfiguration()
            if let tlsCa { configuration.trustRoots = .file(tlsCa) }
            tls = configuration
        }
        var credentials: KafkaClientSecurity.Credentials?
        if chosen.usesSASL {
            guard let mechanism = KafkaClientSecurity.Credentials.Mechanism(rawValue: saslMechanism.uppercased()) else {
                throw ValidationError("--sasl-mechanism must be SCRAM-SHA-256 or PLAIN, got \(saslMechanism).")
            }
            guard let saslUser else { throw ValidationError("--security-protocol \(name) needs --sasl-user.") }
            guard let password = ProcessInfo.processInfo.environment["PETREL_SASL_PASSWORD"] else {
                throw ValidationError("--security-protocol \(name) needs the password in PETREL_SASL_PASSWORD.")
            }
            credentials = .init(mechanism: mechanism, user: saslUser, password: password)
        }
        do {
            return try KafkaClientSecurity(tls: tls, sasl: credentials)
        } catch {
            throw ValidationError("cannot use --tls-ca \(tlsCa ?? ""): \(error)")
        }
    }

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
func withAdmin<Result>(
    _ connection: BootstrapOption,
    _ body: (KafkaAdmin) async throws -> Result
) async throws -> Result {
    let admin = KafkaAdmin(bootstrap: try connection.addresses(), security: try connection.security())
    do {
        let result = try await body(admin)
        await admin.close()
        return result
    } catch {
        await admin.close()
        throw error
    }
}
