import NIOCore
import PetrelProtocol

/// SaslAuthenticate (36): one step of the mechanism chosen in the handshake. A failure is answered
/// with SASL_AUTHENTICATION_FAILED (or ILLEGAL_SASL_STATE) and an error message, then the connection
/// closes, as Kafka does.
struct SaslAuthenticateHandler: FrameRequestHandler {
    let versions: ClosedRange<Int16> = 0...2
    let broker: BrokerState

    func respond(to request: SaslAuthenticateRequest, context: RequestContext) async throws -> ResponseFrame {
        var response = SaslAuthenticateResponse(errorCode: .none, errorMessage: nil)
        var closes = false
        if let session = context.connection.sasl {
            switch session.authenticate(Array(request.authBytes.readableBytesView)) {
            case .proceed(let bytes):
                response.authBytes = ByteBuffer(bytes: bytes)
            case .authenticated(let user, let bytes):
                response.authBytes = ByteBuffer(bytes: bytes)
                broker.metrics.recordAuthentication(succeeded: true)
                context.logger.debug("authenticated", metadata: ["user": "\(user)"])
            case .rejected(let code, let message):
                response.errorCode = code
                response.errorMessage = message
                closes = true
                broker.metrics.recordAuthentication(succeeded: false)
                context.logger.notice(
                    "authentication failed; closing the connection",
                    metadata: ["reason": "\(message)"]
                )
            }
        } else {
            response.errorCode = ErrorCode.illegalSASLState
            response.errorMessage = "this listener does not use SASL"
            closes = true
        }
        var frame = ResponseFrame(
            response,
            version: context.apiVersion,
            correlationID: context.header.correlationID,
            allocator: context.connection.allocator
        )
        frame.closesConnection = closes
        return frame
    }
}
