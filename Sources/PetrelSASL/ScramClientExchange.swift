import Foundation

/// The client side of one SCRAM-SHA-256 exchange (RFC 5802 section 3): the client-first message, the
/// answer to the server's challenge with the proof, and the check of the server's signature, so the
/// client knows it reached a server that holds its keys.
public struct ScramClientExchange: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    private let user: String
    private let password: String
    private let clientNonce: String
    private var clientFirstBare = ""
    private var expectedServerSignature: [UInt8]?

    public init(user: String, password: String) {
        self.user = user
        self.password = password
        clientNonce = Data(Scram.randomBytes(24)).base64EncodedString()
    }

    /// "n,,n=USER,r=NONCE": no channel binding, no authorization identity.
    public mutating func clientFirst() -> [UInt8] {
        let escaped = user.replacingOccurrences(of: "=", with: "=3D").replacingOccurrences(of: ",", with: "=2C")
        clientFirstBare = "n=\(escaped),r=\(clientNonce)"
        return Array("n,,\(clientFirstBare)".utf8)
    }

    /// The client-final message with the proof, from the server-first message.
    public mutating func clientFinal(serverFirst message: [UInt8]) throws -> [UInt8] {
        guard let serverFirst = String(bytes: message, encoding: .utf8) else {
            throw Failure(description: "server-first is not UTF-8")
        }
        let attributes = Scram.attributes(serverFirst)
        guard let nonce = attributes["r"], nonce.hasPrefix(clientNonce), nonce.count > clientNonce.count else {
            throw Failure(description: "the server's nonce does not extend ours")
        }
        guard let saltText = attributes["s"], let salt = Data(base64Encoded: saltText),
            let iterationsText = attributes["i"],
            let iterations = Int(iterationsText), (ScramCredential.minimumIterations...1_000_000).contains(iterations)
        else { throw Failure(description: "malformed server-first message") }
        let withoutProof = "c=biws,r=\(nonce)"
        let authMessage = "\(clientFirstBare),\(serverFirst),\(withoutProof)"
        let salted = Scram.saltedPassword(password, salt: Array(salt), iterations: iterations)
        let clientKey = Scram.hmac(key: salted, "Client Key")
        let proof = Scram.xor(clientKey, Scram.hmac(key: Scram.sha256(clientKey), authMessage))
        expectedServerSignature = Scram.hmac(key: Scram.hmac(key: salted, "Server Key"), authMessage)
        return Array("\(withoutProof),p=\(Data(proof).base64EncodedString())".utf8)
    }

    /// Checks the server-final message: the server must prove it knows the user's keys too.
    public func verify(serverFinal message: [UInt8]) throws {
        let attributes = Scram.attributes(String(decoding: message, as: UTF8.self))
        if let error = attributes["e"] { throw Failure(description: "the server refused: \(error)") }
        guard let expected = expectedServerSignature, let signatureText = attributes["v"],
            let signature = Data(base64Encoded: signatureText), Scram.constantTimeEqual(Array(signature), expected)
        else { throw Failure(description: "the server's signature does not match: it does not hold this user's keys") }
    }
}
