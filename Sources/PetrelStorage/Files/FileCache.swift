import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The open segment and index files of every partition, at most `capacity` at once. A file is opened
/// when it is used and closed when the cache needs its slot for another (CLOCK eviction, `ClockCache`),
/// so a broker with tens of thousands of partitions stays far below the process's descriptor limit:
/// files being written or read stay open because they are used, cold ones cost nothing.
///
/// Descriptors are reference-counted (`FileDescriptor` closes on its last release): a read in flight
/// holds its file open even after the cache evicted it, and a deleted segment's data stays readable to
/// it until it is done.
///
/// Entries are keyed by a `FileKey` whose segment id is never reused, so a file renamed or deleted
/// under a key can never be confused with a new file of the same name; `forget` closes them early.
public final class FileCache: Sendable {
    /// One file of one segment.
    public struct FileKey: Hashable, Sendable {
        public enum Kind: UInt8, Sendable, CaseIterable {
            case log
            case offsetIndex
            case timeIndex
        }

        let segment: UInt64
        let kind: Kind
    }

    public let capacity: Int
    private let entries: Mutex<ClockCache<FileKey, FileDescriptor>>
    private let metrics: StorageMetrics
    private static let segmentIDs = Atomic<UInt64>(0)

    public init(capacity: Int = FileCache.defaultCapacity, metrics: StorageMetrics = .disabled) {
        self.capacity = max(1, capacity)
        self.entries = Mutex(ClockCache(capacity: max(1, capacity)))
        self.metrics = metrics
    }

    /// A new segment's id: the first part of its files' keys, never handed out twice in a process.
    static func newSegmentID() -> UInt64 {
        segmentIDs.wrappingAdd(1, ordering: .relaxed).newValue
    }

    /// Half the process's open-file limit (the rest is for connections and everything else), read at
    /// start, and at least 64.
    public static var defaultCapacity: Int { capacity(forOpenFileLimit: openFileLimit) }

    /// Half of `limit`, and at least 64: the default share of segment files in an open-file limit.
    public static func capacity(forOpenFileLimit limit: Int) -> Int { max(64, limit / 2) }

    /// The process's open-file limit (RLIMIT_NOFILE, soft), as read now; an unlimited or huge one counts
    /// as 1,048,576.
    public static var openFileLimit: Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 8192 }
        return Int(min(limit.rlim_cur, 1 << 20))
    }

    /// The open file for `key`, opening `path` if it is not open. `create` makes the file if it does not
    /// exist (a new segment); otherwise a missing file is an error.
    func file(_ key: FileKey, path: String, create: Bool = false) throws -> FileDescriptor {
        if let open = entries.withLock({ $0.value(for: key) }) {
            metrics.fileCacheHits.increment()
            return open
        }
        metrics.fileCacheMisses.increment()
        // Opened outside the lock: a slow open must not hold up other partitions' appends.
        let opened = try FileDescriptor(opening: path, create: create)
        let (file, evicted, open) = entries.withLock { entries -> (FileDescriptor, FileDescriptor?, Int) in
            if let raced = entries.value(for: key) { return (raced, nil, entries.count) }
            let evicted = entries.insert(opened, for: key)?.value
            return (opened, evicted, entries.count)
        }
        if evicted != nil { metrics.fileCacheEvictions.increment() }
        metrics.openFiles.record(open)
        return file  // `evicted` (and a raced `opened`) close here unless a reader still holds them
    }

    /// Closes `segment`'s files (deleted, or replaced by a cleaning): their slots go to live files, and a
    /// deleted file's space is freed as soon as no read holds it.
    func forget(segment: UInt64) {
        let (dropped, open) = entries.withLock { entries in
            (FileKey.Kind.allCases.compactMap { entries.remove(FileKey(segment: segment, kind: $0)) }, entries.count)
        }
        if !dropped.isEmpty { metrics.openFiles.record(open) }
    }

    /// Files open now.
    public var count: Int { entries.withLock { $0.count } }

    /// A cache for tools and tests that open a few logs: the default capacity, shared.
    public static let shared = FileCache()
}
