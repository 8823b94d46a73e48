import NIOCore
import PetrelProtocol
import PetrelSASL

extension KafkaConnection {
    /// Logs in with SaslHandshake v1 and SaslAuthenticate, as every current client does. A refused
    /// login throws `KafkaClientError.authenticationFailed` with the broker's message.
    func authenticate(_ credentials: KafkaClientSecurity.Credentials) async throws {
        let handshake = try await send(SaslHandshakeRequest(mechanism: credentials.mechanism.rawValue), version: 1)
        guard handshake.errorCode == ErrorCode.none else {
            let offered = handshake.mechanisms.joined(separator: ", ")
            throw KafkaClientError.authenticationFailed(
                "\(handshake.errorCode): the broker offers \(offered.isEmpty ? "no SASL mechanism" : offered)"
            )
        }
        let version = try version(for: SaslAuthenticateRequest.self, maximum: 2)
        switch credentials.mechanism {
        case .plain:
            _ = try await step(
                PlainAuthentication.message(user: credentials.user, password: credentials.password),
                version: version
            )
        case .scramSHA256:
            var exchange = ScramClientExchange(user: credentials.user, password: credentials.password)
            let serverFirst = try await step(exchange.clientFirst(), version: version)
            do {
                let serverFinal = try await step(try exchange.clientFinal(serverFirst: serverFirst), version: version)
                try exchange.verify(serverFinal: serverFinal)
            } catch let failure as ScramClientExchange.Failure {
                throw KafkaClientError.authenticationFailed(failure.description)
            }
        }
    }

    /// One SaslAuthenticate round trip: our bytes out, the broker's back, or its refusal.
    private func step(_ bytes: [UInt8], version: Int16) async throws -> [UInt8] {
        let response = try await send(SaslAuthenticateRequest(authBytes: ByteBuffer(bytes: bytes)), version: version)
        guard response.errorCode == ErrorCode.none else {
            throw KafkaClientError.authenticationFailed(
                "\(response.errorCode): \(response.errorMessage ?? "no message")"
            )
        }
        return Array(response.authBytes.readableBytesView)
    }
}
