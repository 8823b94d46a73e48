import Crypto
import Foundation

/// What a broker keeps of a password: SCRAM-SHA-256's salted keys (RFC 5802, RFC 7677), never the
/// password itself. Both mechanisms check against it: SCRAM through the exchange, PLAIN by salting the
/// password it was sent and comparing keys.
public struct ScramCredential: Codable, Sendable, Hashable {
    public var salt: [UInt8]
    public var iterations: Int
    public var storedKey: [UInt8]
    public var serverKey: [UInt8]

    /// Kafka's minimum for SCRAM-SHA-256; clients refuse fewer.
    public static let minimumIterations = 4096

    public init(salt: [UInt8], iterations: Int, storedKey: [UInt8], serverKey: [UInt8]) {
        self.salt = salt
        self.iterations = iterations
        self.storedKey = storedKey
        self.serverKey = serverKey
    }

    /// Salts and hashes `password` with a fresh random salt.
    public init(password: String, iterations: Int = 8192) {
        self.init(password: password, salt: Scram.randomBytes(24), iterations: iterations)
    }

    public init(password: String, salt: [UInt8], iterations: Int) {
        let salted = Scram.saltedPassword(password, salt: salt, iterations: iterations)
        let clientKey = Scram.hmac(key: salted, "Client Key")
        self.init(
            salt: salt,
            iterations: iterations,
            storedKey: Scram.sha256(clientKey),
            serverKey: Scram.hmac(key: salted, "Server Key")
        )
    }

    /// Whether `password` is the one this credential was made from (PLAIN). Constant-time in the keys.
    public func matches(password: String) -> Bool {
        Scram.constantTimeEqual(
            ScramCredential(password: password, salt: salt, iterations: iterations).storedKey,
            storedKey
        )
    }

    enum CodingKeys: String, CodingKey {
        case salt, iterations
        case storedKey = "stored_key"
        case serverKey = "server_key"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func bytes(_ key: CodingKeys) throws -> [UInt8] {
            guard let data = Data(base64Encoded: try container.decode(String.self, forKey: key)) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "not base64")
            }
            return Array(data)
        }
        salt = try bytes(.salt)
        iterations = try container.decode(Int.self, forKey: .iterations)
        storedKey = try bytes(.storedKey)
        serverKey = try bytes(.serverKey)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Data(salt).base64EncodedString(), forKey: .salt)
        try container.encode(iterations, forKey: .iterations)
        try container.encode(Data(storedKey).base64EncodedString(), forKey: .storedKey)
        try container.encode(Data(serverKey).base64EncodedString(), forKey: .serverKey)
    }
}
