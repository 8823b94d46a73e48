import PetrelStorage

/// How the process's open-file limit is shared between segment files (the `FileCache`) and client
/// connections, with a reserve for everything else (event loops, checkpoints, snapshots, the metrics
/// endpoint, directory fsyncs). The broker must never reach the limit: Swift's concurrency runtime on
/// Linux (libdispatch) aborts the process when it cannot open a file it needs, so connections past the
/// budget are closed as they are accepted instead.
struct DescriptorBudget: Sendable, Hashable {
    let openFileLimit: Int
    let segmentFiles: Int
    let connections: Int
    let reserve: Int
    /// The part of the reserve fetch responses may hold for sendfile (`SendfileAllowance`).
    var sendfileDescriptors: Int { reserve / 2 }

    /// Connections at most when none are configured and the limit leaves room.
    static let defaultMaxConnections = 4_096

    /// `segmentFiles` and `connections` as configured; 0 means "from the limit": half of it for segment
    /// files, and what the files and the reserve leave (at most 4,096) for connections.
    init(openFileLimit: Int, segmentFiles: Int, connections: Int) {
        self.openFileLimit = openFileLimit
        reserve = 64 + openFileLimit / 16
        self.segmentFiles = segmentFiles > 0 ? segmentFiles : FileCache.capacity(forOpenFileLimit: openFileLimit)
        self.connections =
            connections > 0
            ? connections
            : max(1, min(Self.defaultMaxConnections, openFileLimit - self.segmentFiles - reserve))
    }

    /// Whether the configured values could take the process to its limit.
    var isOvercommitted: Bool { segmentFiles + connections + reserve > openFileLimit }
}
