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

    /// SaslAuthenticate: one step of the chosen mechanism. The state is taken out of the lock for the
    /// step (a connection's requests are served one at a time), so key derivation and the users file
    /// are not read under it.
    func authenticate(_ message: [UInt8]) -> Outcome {
        let current = state.withLock { state in
            defer { state = .failed }  // unless the step below puts a state back
            return state
        }
        let (next, outcome) = step(from: current, message)
        state.withLock { $0 = next }
        return outcome
    }

    private func step(from current: State, _ message: [UInt8]) -> (State, Outcome) {
        let users = self.users
        let lookup: @Sendable (String) -> ScramCredential? = { users.credential(for: $0) }
        var exchange: ScramServerExchange
        switch current {
        case .awaitingAuthenticate(.plain):
            do {
                let user = try PlainAuthentication.authenticate(message, lookup: lookup)
                return (.authenticated(user: user), .authenticated(user: user, []))
            } catch {
                return (.failed, .rejected(.saslAuthenticationFailed, "\(error)"))
            }
        case .awaitingAuthenticate(.scramSHA256):
            exchange = ScramServerExchange(lookup: lookup)
        case .scram(let inProgress):
            exchange = inProgress
        case .awaitingHandshake, .authenticated, .failed:
            return (.failed, .rejected(.illegalSASLState, "SaslAuthenticate is not expected now"))
        }
        do {
            switch try exchange.receive(message) {
            case .challenge(let bytes): return (.scram(exchange), .proceed(bytes))
            case .success(let user, let bytes): return (.authenticated(user: user), .authenticated(user: user, bytes))
            }
        } catch {
            return (.failed, .rejected(.saslAuthenticationFailed, "\(error)"))
        }
    }
}
