import PetrelProtocol
import PetrelSASL

/// How the client listener secures connections: Kafka's four security protocols.
public struct ListenerSecurity: Sendable {
    public typealias SecurityProtocol = PetrelProtocol.SecurityProtocol

    public var securityProtocol: SecurityProtocol = .plaintext
    /// PEM certificate chain and private key of the TLS listener (SSL, SASL_SSL).
    public var tlsCertificatePath: String?
    public var tlsPrivateKeyPath: String?
    /// Offered in SaslHandshake, in this order.
    public var saslMechanisms: [SaslMechanism] = [.scramSHA256, .plain]
    /// The users file `petrel users` manages; nil means users.json in the data directory.
    public var usersFile: String?

    public init() {}

    /// Where the users are: `usersFile`, or users.json in the data directory.
    public func usersFilePath(dataDirectory: String) -> String {
        usersFile ?? Self.usersFilePath(dataDirectory: dataDirectory)
    }

    /// The default users file of a data directory (what `petrel users --data` edits).
    public static func usersFilePath(dataDirectory: String) -> String {
        "\(dataDirectory)/users.json"
    }
}
