import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a data directory cannot be used, in words a person can act on.
public enum DataDirectoryError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Another process holds the lock; its pid, if the lock file names one.
    case inUse(directory: String, pid: Int32?)
    /// A system call failed: what was being done, and the operating system's reason.
    case unusable(directory: String, action: String, reason: String)

    public var description: String {
        switch self {
        case .inUse(let directory, let pid):
            "the data directory \(directory) is in use by another broker" + (pid.map { " (pid \($0))" } ?? "")
        case .unusable(let directory, let action, let reason):
            "cannot \(action) the data directory \(directory): \(reason)"
        }
    }
}

/// Exclusive use of a data directory for as long as a broker runs, as Kafka's `.lock` file gives it:
/// an `flock` on `<data>/.lock`, taken before anything else in the directory is read or written. The
/// kernel drops the lock when the process ends however it ends (kill -9 included), so there is never a
/// stale lock to remove by hand. The file holds the owner's pid, for the message a second broker prints.
///
/// `flock` locks belong to the open file description, so a second lock in the same process fails too:
/// two in-process brokers cannot share a directory either.
public final class DataDirectoryLock: Sendable {
    public static let fileName = ".lock"

    public let directory: String
    /// The locked descriptor; -1 once released.
    private let descriptor: Mutex<Int32>

    /// Creates the directory if it is missing (its parent must exist), then locks it. Throws
    /// `DataDirectoryError.inUse` without changing anything in the directory if another holds it.
    public init(directory: String) throws(DataDirectoryError) {
        self.directory = directory
        try Self.makeDirectory(directory)
        let path = directory + "/" + Self.fileName
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Self.failure(directory, "write to", errno) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let error = errno
            defer { close(fd) }
            if error == EWOULDBLOCK { throw .inUse(directory: directory, pid: Self.readPID(fd)) }
            throw Self.failure(directory, "lock", error)
        }
        // Root writes anywhere, so this only stops an ordinary user early, with the reason in words.
        if access(directory, W_OK) != 0 {
            let error = errno
            close(fd)
            throw Self.failure(directory, "write to", error)
        }
        let pid = "\(getpid())\n"
        let written = pid.utf8CString.withUnsafeBufferPointer { bytes in
            ftruncate(fd, 0) == 0 ? pwrite(fd, bytes.baseAddress, bytes.count - 1, 0) : -1
        }
        if written < 0 {
            let error = errno
            close(fd)
            throw Self.failure(directory, "write to", error)
        }
        self.descriptor = Mutex(fd)
    }

    deinit {
        release()
    }

    /// Gives the directory up (closing the descriptor drops the lock). Idempotent.
    public func release() {
        descriptor.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    /// `mkdir` of the last component only: a missing parent is more likely a typo than a wish.
    private static func makeDirectory(_ directory: String) throws(DataDirectoryError) {
        if mkdir(directory, 0o755) == 0 { return }
        let error = errno
        var info = stat()
        if error == EEXIST, stat(directory, &info) == 0 {
            if info.st_mode & S_IFMT == S_IFDIR { return }
            throw failure(directory, "use", ENOTDIR)
        }
        throw failure(directory, "create", error)
    }

    private static func failure(_ directory: String, _ action: String, _ error: Int32) -> DataDirectoryError {
        .unusable(directory: directory, action: action, reason: String(cString: strerror(error)))
    }

    private static func readPID(_ fd: Int32) -> Int32? {
        var bytes = [UInt8](repeating: 0, count: 32)
        let count = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        let text = String(decoding: bytes[..<count], as: UTF8.self).split(separator: "\n").first ?? ""
        return Int32(text)
    }
}
