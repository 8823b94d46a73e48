/// A Kafka API key (the first field of every request header). A struct rather than an enum so that a key
/// this broker does not know can still be carried, logged and refused.
public struct APIKey: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: Int16

    public init(rawValue: Int16) {
        self.rawValue = rawValue
    }

    public static func < (lhs: APIKey, rhs: APIKey) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { name.map { "\($0)(\(rawValue))" } ?? "UnknownAPI(\(rawValue))" }
}
