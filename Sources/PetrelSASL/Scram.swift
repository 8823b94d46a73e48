import Crypto

/// The SCRAM-SHA-256 primitives (RFC 5802 section 2.2, with SHA-256 as RFC 7677 names it), shared by
/// the broker's and the client's side of the exchange.
public enum Scram {
    public static func hmac(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }

    public static func hmac(key: [UInt8], _ message: String) -> [UInt8] {
        hmac(key: key, Array(message.utf8))
    }

    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(data: bytes))
    }

    /// Hi(): PBKDF2 with HMAC-SHA-256 and one output block.
    public static func saltedPassword(_ password: String, salt: [UInt8], iterations: Int) -> [UInt8] {
        let key = SymmetricKey(data: Array(password.utf8))
        var block = Array(HMAC<SHA256>.authenticationCode(for: salt + [0, 0, 0, 1], using: key))
        var result = block
        for _ in 1..<max(1, iterations) {
            block = Array(HMAC<SHA256>.authenticationCode(for: block, using: key))
            for index in result.indices { result[index] ^= block[index] }
        }
        return result
    }

    public static func xor(_ left: [UInt8], _ right: [UInt8]) -> [UInt8] {
        zip(left, right).map { $0 ^ $1 }
    }

    /// Salts and nonces, from the system's secure random source.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    /// "a=1,b=2" → ["a": "1", "b": "2"]; values may contain "=" (base64).
    static func attributes(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for field in text.split(separator: ",") {
            guard let equals = field.firstIndex(of: "="), field.distance(from: field.startIndex, to: equals) == 1 else {
                continue
            }
            result[String(field[..<equals])] = String(field[field.index(after: equals)...])
        }
        return result
    }

    /// Compares without stopping at the first difference, so timing tells nothing about the key.
    public static func constantTimeEqual(_ left: [UInt8], _ right: [UInt8]) -> Bool {
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }
}
