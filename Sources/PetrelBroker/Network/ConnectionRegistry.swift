import NIOCore
import Synchronization

/// The open client connections and whether each is serving a request, so that a graceful shutdown can
/// close idle connections at once and let busy ones finish the request they are on.
final class ConnectionRegistry: Sendable {
    private struct Entry {
        var channel: any Channel
        var busy = false
        /// When the last request finished; its response may still be on its way to the socket.
        var lastRequestEnded = ContinuousClock.now
    }

    private struct State {
        var entries: [UInt64: Entry] = [:]
        var draining = false
    }

    private let state = Mutex(State())

    /// Whether a shutdown has begun: no new requests are started.
    var isDraining: Bool { state.withLock { $0.draining } }

    var count: Int { state.withLock { $0.entries.count } }

    enum Registration {
        case registered
        /// The broker is shutting down: close the connection.
        case draining
        /// `limit` connections are already open: close the connection.
        case full
    }

    /// Adds a connection unless the broker is shutting down or already has `limit` open.
    func register(_ id: UInt64, channel: any Channel, limit: Int) -> Registration {
        state.withLock { state in
            guard !state.draining else { return .draining }
            guard state.entries.count < limit else { return .full }
            state.entries[id] = Entry(channel: channel)
            return .registered
        }
    }

    /// Whether the connection is being served a request or finished one within `window` (so not idle,
    /// whatever its socket says: a long poll is quiet, and a response may not have reached the socket).
    func isActive(_ id: UInt64, within window: Duration, now: ContinuousClock.Instant = .now) -> Bool {
        state.withLock { state in
            guard let entry = state.entries[id] else { return false }
            return entry.busy || now - entry.lastRequestEnded < window
        }
    }

    func remove(_ id: UInt64) {
        state.withLock { _ = $0.entries.removeValue(forKey: id) }
    }

    /// Marks the connection busy with a request; false if the broker is shutting down and the request
    /// must not be started.
    func beginRequest(_ id: UInt64) -> Bool {
        state.withLock { state in
            guard !state.draining else { return false }
            state.entries[id]?.busy = true
            return true
        }
    }

    /// Marks the connection idle again; true if the broker is shutting down and the connection should
    /// now close.
    func endRequest(_ id: UInt64, now: ContinuousClock.Instant = .now) -> Bool {
        state.withLock { state in
            state.entries[id]?.busy = false
            state.entries[id]?.lastRequestEnded = now
            return state.draining
        }
    }

    /// Starts the shutdown: refuses new requests and closes every idle connection. Busy ones close
    /// after their response (see `endRequest`).
    func drain() {
        let idle = state.withLock { state in
            state.draining = true
            return state.entries.values.filter { !$0.busy }.map(\.channel)
        }
        for channel in idle { channel.close(promise: nil) }
    }

    /// Waits until every connection has closed, or `timeout` passes. Returns whether all closed.
    func waitUntilEmpty(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while count > 0 {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return true
    }
}
