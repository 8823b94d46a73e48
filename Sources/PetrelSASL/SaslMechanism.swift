/// The SASL mechanisms the broker can offer, by their Kafka names.
public enum SaslMechanism: String, Sendable, CaseIterable {
    case plain = "PLAIN"
    case scramSHA256 = "SCRAM-SHA-256"
}
