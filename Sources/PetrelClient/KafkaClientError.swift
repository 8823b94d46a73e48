import PetrelProtocol

/// An error from the client library. A struct around a private enum, so cases can be added later.
public struct KafkaClientError: Error, Hashable, Sendable, CustomStringConvertible {
    enum Kind: Hashable, Sendable {
        case connectionFailed(String)
        case connectionClosed
        case unexpectedResponse(String)
        case unsupportedVersion(APIKey)
        case broker(ErrorCode, String?)
        case timedOut(String)
        case invalidArgument(String)
        case authenticationFailed(String)
    }

    let kind: Kind

    init(_ kind: Kind) {
        self.kind = kind
    }

    public static func connectionFailed(_ reason: String) -> Self { Self(.connectionFailed(reason)) }
    public static let connectionClosed = Self(.connectionClosed)
    public static func unexpectedResponse(_ reason: String) -> Self { Self(.unexpectedResponse(reason)) }
    public static func unsupportedVersion(_ api: APIKey) -> Self { Self(.unsupportedVersion(api)) }
    public static func broker(_ code: ErrorCode, message: String? = nil) -> Self { Self(.broker(code, message)) }
    public static func timedOut(_ what: String) -> Self { Self(.timedOut(what)) }
    public static func invalidArgument(_ reason: String) -> Self { Self(.invalidArgument(reason)) }
    public static func authenticationFailed(_ reason: String) -> Self { Self(.authenticationFailed(reason)) }

    /// The broker's error code, if the broker refused the request.
    public var errorCode: ErrorCode? {
        if case .broker(let code, _) = kind { return code }
        return nil
    }

    /// For a broker that could not be reached: which one and why (`127.0.0.1:9092: connection refused`).
    public var unreachableBroker: String? {
        if case .connectionFailed(let reason) = kind { return reason }
        return nil
    }

    /// Whether trying again later may succeed.
    public var isRetriable: Bool {
        switch kind {
        case .connectionFailed, .connectionClosed, .timedOut: true
        case .broker(let code, _): code.isRetriable
        case .unexpectedResponse, .unsupportedVersion, .invalidArgument, .authenticationFailed: false
        }
    }

    public var description: String {
        switch kind {
        case .connectionFailed(let reason): "cannot connect to \(reason)"
        case .connectionClosed: "the connection closed"
        case .unexpectedResponse(let reason): "unexpected response: \(reason)"
        case .unsupportedVersion(let api): "the broker serves no version of \(api) this client speaks"
        case .broker(let code, let message): message.map { "\(code): \($0)" } ?? "\(code)"
        case .timedOut(let what): "\(what) timed out"
        case .invalidArgument(let reason): reason
        case .authenticationFailed(let reason): "authentication failed: \(reason)"
        }
    }
}
