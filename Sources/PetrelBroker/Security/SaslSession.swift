import PetrelProtocol
import PetrelSASL
import Synchronization

/// One connection's progress through SASL authentication on a secured listener: ApiVersions and
/// SaslHandshake first, then SaslAuthenticate until the mechanism is satisfied. Until then every other
/// request closes the connection, as Kafka does.
final class SaslSession: Sendable {
    enum Outcome {
        /// Send these bytes; the client answers with another SaslAuthenticate.
        case proceed([UInt8])
        /// In, as `user`; send these bytes (empty for PLAIN).
        case authenticated(user: String, [UInt8])
        /// Out: send the error and close the connection.
        case rejected(ErrorCode, String)
    }

    private enum State: Sendable {
        case awaitingHandshake
        case awaitingAuthenticate(SaslMechanism)
        case scram(ScramServerExchange)
        case authenticated(user: String)
        case failed
    }

    let mechanisms: [SaslMechanism]
    private let users: UserStore
    private let state = Mutex(State.awaitingHandshake)

    init(mechanisms: [SaslMechanism], users: UserStore) {
        self.mechanisms = mechanisms
        self.users = users
    }

    var isAuthenticated: Bool {
        state.withLock { if case .authenticated = $0 { true } else { false } }
    }

    /// The authenticated user's name, for logs.
    var user: String? {
        state.withLock { if case .authenticated(let user) = $0 { user } else { nil } }
    }

    /// SaslHandshake: picks the mechanism. Returns the error code for the response.
    func handshake(mechanism name: String) -> ErrorCode {
        state.withLock { state in
            guard case .awaitingHandshake = state else { return .illegalSASLState }
            guard let mechanism = SaslMechanism(rawValue: name), mechanisms.contains(mechanism) else {
                return .unsupportedSASLMechanism
            }
            state = .awaitingAuthenticate(mechanism)
            return .none
        }
    }

    /// SaslAuthenticate: one step of the chosen mechanism.
    func authenticate(_ message: [UInt8]) -> Outcome {
        let users = self.users
        let lookup: @Sendable (String) -> ScramCredential? = { users.credential(for: $0) }
        return state.withLock { state in
            switch state {
            case .awaitingAuthenticate(.plain):
                do {
                    let user = try PlainAuthentication.authenticate(message, lookup: lookup)
                    state = .authenticated(user: user)
                    return .authenticated(user: user, [])
                } catch {
                    state = .failed
                    return .rejected(.saslAuthenticationFailed, "\(error)")
                }
            case .awaitingAuthenticate(.scramSHA256):
                var exchange = ScramServerExchange(lookup: lookup)
                return step(&exchange, message, &state)
            case .scram(var exchange):
                return step(&exchange, message, &state)
            case .awaitingHandshake, .authenticated, .failed:
                state = .failed
                return .rejected(.illegalSASLState, "SaslAuthenticate is not expected now")
            }
        }
    }

    private func step(_ exchange: inout ScramServerExchange, _ message: [UInt8], _ state: inout State) -> Outcome {
        do {
            switch try exchange.receive(message) {
            case .challenge(let bytes):
                state = .scram(exchange)
                return .proceed(bytes)
            case .success(let user, let bytes):
                state = .authenticated(user: user)
                return .authenticated(user: user, bytes)
            }
        } catch {
            state = .failed
            return .rejected(.saslAuthenticationFailed, "\(error)")
        }
    }
}
