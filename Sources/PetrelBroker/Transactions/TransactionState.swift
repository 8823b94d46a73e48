/// Where a transactional id's transaction stands, with Kafka's names (ListTransactions and
/// DescribeTransactions report them exactly; clients parse them) and Kafka's numbers on disk.
enum TransactionState: Int8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// No transaction open: after InitProducerId, or before the first one.
    case empty = 0
    /// Partitions or offsets have been added; EndTxn or a timeout ends it.
    case ongoing = 1
    /// EndTxn(commit) is durable; the markers are being written.
    case prepareCommit = 2
    /// EndTxn(abort), a timeout or a fencing InitProducerId is durable; the markers are being written.
    case prepareAbort = 3
    case completeCommit = 4
    case completeAbort = 5
    case dead = 6
    case prepareEpochFence = 7

    var description: String {
        switch self {
        case .empty: "Empty"
        case .ongoing: "Ongoing"
        case .prepareCommit: "PrepareCommit"
        case .prepareAbort: "PrepareAbort"
        case .completeCommit: "CompleteCommit"
        case .completeAbort: "CompleteAbort"
        case .dead: "Dead"
        case .prepareEpochFence: "PrepareEpochFence"
        }
    }

    init?(name: String) {
        guard let state = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = state
    }

    /// Markers are being written: requests for the id wait (CONCURRENT_TRANSACTIONS).
    var isEnding: Bool { self == .prepareCommit || self == .prepareAbort }
}
