import Synchronization

/// How many descriptors fetch responses may hold at once for sendfile. A file part of a response is
/// sent from a duplicate of its segment file's descriptor (one per partition with data, held until the
/// write completes), so a consumer fetching thousands of partitions, times many connections, could
/// otherwise take the process to its open-file limit, where the runtime aborts. A response that finds
/// the allowance spent reads its records into memory instead (as TLS does), through the descriptors
/// the file cache already holds.
final class SendfileAllowance: Sendable {
    let capacity: Int
    private let inUse = Atomic<Int>(0)

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// Descriptors held by responses now.
    var held: Int { inUse.load(ordering: .relaxed) }

    /// Takes `count` descriptors if that many are left; the grant gives them back when it is released.
    func grant(_ count: Int) -> SendfileGrant? {
        var current = inUse.load(ordering: .relaxed)
        while current + count <= capacity {
            let (exchanged, actual) = inUse.compareExchange(
                expected: current,
                desired: current + count,
                ordering: .acquiringAndReleasing
            )
            if exchanged { return SendfileGrant(allowance: self, count: count) }
            current = actual
        }
        return nil
    }

    fileprivate func giveBack(_ count: Int) {
        inUse.subtract(count, ordering: .acquiringAndReleasing)
    }
}

/// Descriptors a response may open for sendfile, returned when the last reference to the grant goes:
/// after the response's writes complete, or when it is dropped unsent (a closed connection).
final class SendfileGrant: Sendable {
    private let allowance: SendfileAllowance
    let count: Int

    fileprivate init(allowance: SendfileAllowance, count: Int) {
        self.allowance = allowance
        self.count = count
    }

    deinit { allowance.giveBack(count) }
}
