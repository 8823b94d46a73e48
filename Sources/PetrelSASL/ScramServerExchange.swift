import Foundation

/// The server side of one SCRAM-SHA-256 exchange: client-first → server-first, client-final →
/// server-final (RFC 5802 section 3). An unknown user gets a made-up salt and fails only at the proof,
/// so the exchange does not reveal which users exist.
public struct ScramServerExchange: Sendable {
    public enum Step: Sendable {
        /// Send these bytes and wait for the client's next message.
        case challenge([UInt8])
        /// Authenticated as the user; send these bytes (the server signature) as the last message.
        case success(user: String, [UInt8])
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    private enum State {
        case awaitingClientFirst
        case awaitingClientFinal(
            user: String,
            credential: ScramCredential?,
            gs2Header: String,
            clientFirstBare: String,
            serverFirst: String,
            clientNonce: String,
            nonce: String
        )
        case done
    }

    private var state = State.awaitingClientFirst
    private let lookup: @Sendable (String) -> ScramCredential?

    public init(lookup: @escaping @Sendable (String) -> ScramCredential?) {
        self.lookup = lookup
    }

    public mutating func receive(_ message: [UInt8]) throws -> Step {
        guard let text = String(bytes: message, encoding: .utf8) else {
            throw Failure(description: "the message is not UTF-8")
        }
        switch state {
        case .awaitingClientFirst:
            return try receiveClientFirst(text)
        case .awaitingClientFinal(
            let user,
            let credential,
            let gs2Header,
            let clientFirstBare,
            let serverFirst,
            let clientNonce,
            let nonce
        ):
            state = .done
            return try receiveClientFinal(
                text,
                user: user,
                credential: credential,
                gs2Header: gs2Header,
                clientFirstBare: clientFirstBare,
                serverFirst: serverFirst,
                clientNonce: clientNonce,
                nonce: nonce
            )
        case .done:
            throw Failure(description: "the exchange is already over")
        }
    }

    private mutating func receiveClientFirst(_ text: String) throws -> Step {
        // gs2-header: channel binding flag ("n" or "y"; Kafka has no channel binding), authzid, then the bare message.
        let parts = text.split(separator: ",", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "n" || parts[0] == "y" else {
            throw Failure(description: "malformed client-first message")
        }
        let gs2Header = "\(parts[0]),\(parts[1]),"
        let clientFirstBare = String(parts[2])
        let attributes = Scram.attributes(clientFirstBare)
        guard let escapedUser = attributes["n"], let clientNonce = attributes["r"], !clientNonce.isEmpty else {
            throw Failure(description: "client-first message without user or nonce")
        }
        let user = escapedUser.replacingOccurrences(of: "=2C", with: ",").replacingOccurrences(of: "=3D", with: "=")
        let credential = lookup(user)
        let serverNonce = Data(Scram.randomBytes(18)).base64EncodedString()
        let nonce = clientNonce + serverNonce
        let salt = credential?.salt ?? Scram.randomBytes(24)
        let iterations = credential?.iterations ?? ScramCredential.minimumIterations
        let serverFirst = "r=\(nonce),s=\(Data(salt).base64EncodedString()),i=\(iterations)"
        state = .awaitingClientFinal(
            user: user,
            credential: credential,
            gs2Header: gs2Header,
            clientFirstBare: clientFirstBare,
            serverFirst: serverFirst,
            clientNonce: clientNonce,
            nonce: nonce
        )
        return .challenge(Array(serverFirst.utf8))
    }

    private func receiveClientFinal(
        _ text: String,
        user: String,
        credential: ScramCredential?,
        gs2Header: String,
        clientFirstBare: String,
        serverFirst: String,
        clientNonce: String,
        nonce: String
    ) throws -> Step {
        guard let proofStart = text.range(of: ",p=") else {
            throw Failure(description: "client-final message without proof")
        }
        let withoutProof = String(text[..<proofStart.lowerBound])
        let attributes = Scram.attributes(text)
        guard attributes["c"] == Data(gs2Header.utf8).base64EncodedString() else {
            throw Failure(description: "channel binding does not match")
        }
        // librdkafka before 2.x's later releases repeats its own nonce in front of the combined one;
        // Kafka accepts that form too (it checks the ending), so both are taken here, nothing else.
        guard let clientFinalNonce = attributes["r"],
            clientFinalNonce == nonce || clientFinalNonce == clientNonce + nonce
        else {
            throw Failure(description: "nonce does not match")
        }
        guard let proofText = attributes["p"], let proof = Data(base64Encoded: proofText), proof.count == 32 else {
            throw Failure(description: "malformed proof")
        }
        guard let credential else { throw Failure(description: "authentication failed for user \(user)") }
        let authMessage = "\(clientFirstBare),\(serverFirst),\(withoutProof)"
        let clientSignature = Scram.hmac(key: credential.storedKey, authMessage)
        let clientKey = Scram.xor(Array(proof), clientSignature)
        guard Scram.constantTimeEqual(Scram.sha256(clientKey), credential.storedKey) else {
            throw Failure(description: "authentication failed for user \(user)")
        }
        let serverSignature = Scram.hmac(key: credential.serverKey, authMessage)
        return .success(user: user, Array("v=\(Data(serverSignature).base64EncodedString())".utf8))
    }
}
