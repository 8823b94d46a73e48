/// A request or response that cannot be decoded. The broker answers it by closing the connection.
public struct ProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// The bytes ended before the value did.
        case truncated
        /// A length, count or varint outside what the protocol allows.
        case invalidLength
        /// A value that cannot be what the field says (e.g. a bool that is neither 0 nor 1).
        case invalidValue
        /// A version the message schema does not define.
        case unsupportedVersion
    }

    public var kind: Kind
    public var detail: String

    public init(_ kind: Kind, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }

    public var description: String { "\(kind): \(detail)" }

    @usableFromInline
    static func truncated(_ what: String) -> ProtocolError { ProtocolError(.truncated, "\(what) is cut short") }
}
