/// Kafka's four ways to secure a connection (`security.protocol`), named as clients and brokers name
/// them: what a broker's listener requires and what a client connects with.
public enum SecurityProtocol: String, Sendable, CaseIterable {
    case plaintext = "PLAINTEXT"
    case ssl = "SSL"
    case saslPlaintext = "SASL_PLAINTEXT"
    case saslSSL = "SASL_SSL"

    public var usesTLS: Bool { self == .ssl || self == .saslSSL }
    public var usesSASL: Bool { self == .saslPlaintext || self == .saslSSL }
}
