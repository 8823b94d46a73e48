#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failure in the storage layer, with the path and the operation that failed.
public struct StorageError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var path: String
    public var reason: String

    /// A failed system call, described by its errno.
    public init(_ operation: String, path: String, errno: Int32) {
        self.init(operation, path: path, reason: String(cString: strerror(errno)))
    }

    public init(_ operation: String, path: String, reason: String) {
        self.operation = operation
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(operation) \(path): \(reason)" }
}

/// An open file, closed when the last reference goes away. Positional reads and writes only, so one
/// descriptor can serve concurrent readers while a single writer appends.
public final class FileDescriptor: Sendable {
    public let rawValue: Int32
    public let path: String

    public init(opening path: String, create: Bool = true, readOnly: Bool = false) throws {
        var flags = readOnly ? O_RDONLY : O_RDWR
        if create { flags |= O_CREAT }
        let fd = open(path, flags | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StorageError("open", path: path, errno: errno) }
        self.rawValue = fd
        self.path = path
    }

    deinit {
        close(rawValue)
    }

    public func size() throws -> Int {
        var info = stat()
        guard fstat(rawValue, &info) == 0 else { throw StorageError("stat", path: path, errno: errno) }
        return Int(info.st_size)
    }

    /// Reads up to `count` bytes at `offset`; fewer only at the end of the file.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = pread(rawValue, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw StorageError("read", path: path, errno: errno)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(rawValue, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw StorageError("write", path: path, errno: errno)
            }
            done += n
        }
    }

    /// Writes two byte ranges back to back at `offset` with one system call where possible (the patched
    /// head of a record batch and the untouched rest, so the batch itself is never copied).
    public func write(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer, at offset: Int) throws {
        var vectors = [
            iovec(iov_base: UnsafeMutableRawPointer(mutating: first.baseAddress), iov_len: first.count),
            iovec(iov_base: UnsafeMutableRawPointer(mutating: second.baseAddress), iov_len: second.count),
        ]
        let total = first.count + second.count
        let n = vectors.withUnsafeMutableBufferPointer { pwritev(rawValue, $0.baseAddress, 2, off_t(offset)) }
        if n == total { return }
        if n < 0 && errno != EINTR { throw StorageError("write", path: path, errno: errno) }
        // Short write: finish byte range by byte range.
        let written = max(0, n)
        if written < first.count {
            try write(UnsafeRawBufferPointer(rebasing: first[written...]), at: offset + written)
            try write(second, at: offset + first.count)
        } else {
            try write(UnsafeRawBufferPointer(rebasing: second[(written - first.count)...]), at: offset + written)
        }
    }

    public func truncate(to size: Int) throws {
        guard ftruncate(rawValue, off_t(size)) == 0 else { throw StorageError("truncate", path: path, errno: errno) }
    }

    /// Forces written data to stable storage.
    public func sync() throws {
        guard fdatasync(rawValue) == 0 else { throw StorageError("fsync", path: path, errno: errno) }
    }

    /// A new descriptor for the same open file, owned by the caller (for handing to sendfile).
    public func duplicate() throws -> Int32 {
        let fd = fcntl(rawValue, F_DUPFD_CLOEXEC, 0)
        guard fd >= 0 else { throw StorageError("dup", path: path, errno: errno) }
        return fd
    }
}

/// Forces a directory's entries (new, renamed or deleted files) to stable storage.
public func syncDirectory(_ path: String) throws {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw StorageError("open directory", path: path, errno: errno) }
    defer { close(fd) }
    guard fsync(fd) == 0 else { throw StorageError("fsync directory", path: path, errno: errno) }
}

/// Removes a file; true if it existed.
@discardableResult
func unlinkFile(_ path: String) -> Bool {
    unlink(path) == 0
}
