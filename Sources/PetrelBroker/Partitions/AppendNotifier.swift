import NIOCore
import PetrelProtocol
import Synchronization

/// Wakes long-polling fetches when data arrives on a partition they wait for. A fetch that finds too
/// little data parks here until an append, its deadline, or cancellation; nothing polls.
final class AppendNotifier: Sendable {
    private let waiters: Mutex<[TopicPartition: [ObjectIdentifier: Waiter]]> = Mutex([:])

    /// One parked fetch. It can be woken from several places (append, timer, cancellation, a stale
    /// check); only the first wake counts.
    final class Waiter: Sendable {
        private enum State {
            case idle
            case waiting(CheckedContinuation<Void, Never>)
            case woken
        }

        private let state = Mutex(State.idle)

        func wake() {
            let continuation: CheckedContinuation<Void, Never>? = state.withLock { state in
                switch state {
                case .idle:
                    state = .woken
                    return nil
                case .waiting(let continuation):
                    state = .woken
                    return continuation
                case .woken:
                    return nil
                }
            }
            continuation?.resume()
        }

        fileprivate func park(_ continuation: CheckedContinuation<Void, Never>) {
            let wokenAlready = state.withLock { state in
                if case .woken = state { return true }
                state = .waiting(continuation)
                return false
            }
            if wokenAlready { continuation.resume() }
        }
    }

    /// Called after every append.
    func notifyAppend(to partition: TopicPartition) {
        let parked = waiters.withLock { $0[partition].map { Array($0.values) } }
        parked?.forEach { $0.wake() }
    }

    /// Wakes every parked fetch (the broker is shutting down; they answer with what they have).
    func wakeAll() {
        let parked = waiters.withLock { $0.values.flatMap(\.values) }
        parked.forEach { $0.wake() }
    }

    /// Waits until one of `partitions` gets an append, `deadline` passes, or the task is cancelled.
    /// `hasNewData` is checked after registering, to catch an append that raced with the caller's read.
    func waitForAppend(
        to partitions: [TopicPartition],
        deadline: NIODeadline,
        eventLoop: any EventLoop,
        hasNewData: @Sendable () -> Bool
    ) async {
        let waiter = Waiter()
        let key = ObjectIdentifier(waiter)
        waiters.withLock { waiters in
            for partition in partitions { waiters[partition, default: [:]][key] = waiter }
        }
        let timer = eventLoop.scheduleTask(deadline: deadline) { waiter.wake() }
        if hasNewData() { waiter.wake() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { waiter.park($0) }
        } onCancel: {
            waiter.wake()
        }
        timer.cancel()
        waiters.withLock { waiters in
            for partition in partitions {
                waiters[partition]?[key] = nil
                if waiters[partition]?.isEmpty == true { waiters[partition] = nil }
            }
        }
    }
}
