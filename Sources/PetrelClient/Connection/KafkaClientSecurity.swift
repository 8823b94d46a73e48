import NIOSSL
import PetrelProtocol
import PetrelSASL

/// How a client connects to a secured listener: TLS, SASL, both (SASL_SSL) or neither.
///
///     var tls = TLSConfiguration.makeClientConfiguration()
///     tls.trustRoots = .file("ca.pem")
///     let security = try KafkaClientSecurity(
///         tls: tls, sasl: .init(mechanism: .scramSHA256, user: "alice", password: password))
public struct KafkaClientSecurity: Sendable {
    /// A SASL login.
    public struct Credentials: Sendable {
        public typealias Mechanism = SaslMechanism
        public var mechanism: Mechanism
        public var user: String
        public var password: String

        public init(mechanism: Mechanism, user: String, password: String) {
            self.mechanism = mechanism
            self.user = user
            self.password = password
        }
    }

    /// Neither TLS nor SASL.
    public static let plaintext = KafkaClientSecurity()

    /// Made once from the TLS configuration, so connections share its certificates and trust roots.
    let tlsContext: NIOSSLContext?
    public let credentials: Credentials?

    private init() {
        tlsContext = nil
        credentials = nil
    }

    /// Fails if the TLS configuration cannot be loaded (a missing or unreadable certificate file).
    public init(tls: TLSConfiguration? = nil, sasl credentials: Credentials? = nil) throws {
        tlsContext = try tls.map { try NIOSSLContext(configuration: $0) }
        self.credentials = credentials
    }

    /// Kafka's name for the combination: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    public var securityProtocol: SecurityProtocol {
        switch (tlsContext != nil, credentials != nil) {
        case (false, false): .plaintext
        case (true, false): .ssl
        case (false, true): .saslPlaintext
        case (true, true): .saslSSL
        }
    }
}
