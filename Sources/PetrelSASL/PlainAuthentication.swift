/// SASL PLAIN (RFC 4616): one message, "authzid NUL user NUL password". Send it over TLS only: the
/// password crosses the wire as is.
public enum PlainAuthentication {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The client's message.
    public static func message(user: String, password: String) -> [UInt8] {
        [0] + Array(user.utf8) + [0] + Array(password.utf8)
    }

    /// The authenticated user, or a failure.
    public static func authenticate(_ message: [UInt8], lookup: (String) -> ScramCredential?) throws -> String {
        let fields = message.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3, let user = String(bytes: fields[1], encoding: .utf8),
            let password = String(bytes: fields[2], encoding: .utf8), !user.isEmpty
        else { throw Failure(description: "malformed PLAIN message") }
        let authorizationID = String(decoding: fields[0], as: UTF8.self)
        guard authorizationID.isEmpty || authorizationID == user else {
            throw Failure(description: "user \(user) may not act as \(authorizationID)")
        }
        guard let credential = lookup(user), credential.matches(password: password) else {
            throw Failure(description: "authentication failed for user \(user)")
        }
        return user
    }
}
