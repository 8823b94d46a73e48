import PetrelProtocol

/// SaslHandshake (17): the client names its mechanism; the answer lists those enabled. v0 is
/// advertised because librdkafka before 2.x's newer releases enables SASL only when it sees v0 in
/// range, but clients then use v1 with SaslAuthenticate; a real v0 handshake, which would be followed by
/// bare SASL tokens outside Kafka framing, is refused with ILLEGAL_SASL_STATE.
struct SaslHandshakeHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...1

    func handle(_ request: SaslHandshakeRequest, context: RequestContext) async throws -> SaslHandshakeResponse? {
        guard let session = context.connection.sasl else {
            // A listener without SASL, as in Kafka: the handshake is out of place here.
            return SaslHandshakeResponse(errorCode: ErrorCode.illegalSASLState, mechanisms: [])
        }
        guard context.apiVersion >= 1 else {
            context.logger.notice("SASL handshake v0 (bare tokens) is not supported; use v1 with SaslAuthenticate")
            return SaslHandshakeResponse(
                errorCode: ErrorCode.illegalSASLState,
                mechanisms: session.mechanisms.map(\.rawValue)
            )
        }
        let code = session.handshake(mechanism: request.mechanism)
        if code != ErrorCode.none {
            context.logger.notice(
                "SASL handshake refused",
                metadata: ["mechanism": "\(request.mechanism)", "error": "\(code.name)"]
            )
        }
        return SaslHandshakeResponse(errorCode: code, mechanisms: session.mechanisms.map(\.rawValue))
    }
}
