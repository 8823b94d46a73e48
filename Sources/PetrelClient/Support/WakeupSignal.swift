import NIOCore
import NIOPosix
import Synchronization

/// Wakes one waiting loop: `signal()` ends the current (or next) `wait`. Signals do not queue beyond one.
final class WakeupSignal: Sendable {
    private enum State {
        case idle
        case signalled
        case waiting(CheckedContinuation<Void, Never>)
    }

    private let state = Mutex(State.idle)
    private let eventLoop: any EventLoop

    init(eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()) {
        self.eventLoop = eventLoop
    }

    func signal() {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { state in
            switch state {
            case .idle, .signalled:
                state = .signalled
                return nil
            case .waiting(let continuation):
                state = .idle
                return continuation
            }
        }
        waiter?.resume()
    }

    /// Returns at the next signal, after `timeout` at the latest (nil: no limit), or on cancellation.
    func wait(timeout: TimeAmount?) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let alreadySignalled = state.withLock { state -> Bool in
                    if case .signalled = state {
                        state = .idle
                        return true
                    }
                    state = .waiting(continuation)
                    return false
                }
                if alreadySignalled {
                    continuation.resume()
                } else if let timeout {
                    eventLoop.scheduleTask(in: timeout) { self.wakeWaiter() }
                }
            }
        } onCancel: {
            wakeWaiter()
        }
    }

    private func wakeWaiter() {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { state in
            guard case .waiting(let continuation) = state else { return nil }
            state = .idle
            return continuation
        }
        waiter?.resume()
    }
}
