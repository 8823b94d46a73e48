#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Small `key: value` / `key=value` text files (Kafka's meta.properties and partition.metadata style),
/// written atomically: temp file, fsync, rename, fsync of the folder.
enum PropertiesFile {
    static func read(_ path: String) throws -> [String: String]? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        var result: [String: String] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let trimmed = trimmingSpaces(line)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let separator = trimmed.firstIndex(where: { $0 == "=" || $0 == ":" }) else { continue }
            result[trimmingSpaces(trimmed[..<separator])] = trimmingSpaces(trimmed[trimmed.index(after: separator)...])
        }
        return result
    }

    static func write(_ entries: [(String, String)], to path: String, separator: String = "=") throws {
        let text = entries.map { "\($0.0)\(separator)\($0.1)\n" }.joined()
        try writeAtomically(Array(text.utf8), to: path)
    }
}

/// Replaces `path` with `bytes` so that a crash or a power failure leaves either the old or the new
/// content, never a mix: a temporary file, fsynced, renamed over `path`, then the folder fsynced.
public func writeAtomically(_ bytes: [UInt8], to path: String, permissions: mode_t = 0o644) throws {
    let temporary = path + ".tmp"
    do {
        let file = try FileDescriptor(opening: temporary)
        // A leftover temporary file keeps its mode: set it, so a private file never goes out readable.
        guard fchmod(file.rawValue, permissions) == 0 else {
            throw StorageError("chmod", path: temporary, errno: errno)
        }
        try file.truncate(to: 0)
        try bytes.withUnsafeBytes { try file.write($0, at: 0) }
        try file.sync()
    }
    guard rename(temporary, path) == 0 else { throw StorageError("rename", path: temporary, errno: errno) }
    try syncDirectory(parentDirectory(of: path))
}

func parentDirectory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

func trimmingSpaces<S: StringProtocol>(_ text: S) -> String {
    String(text.drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
}
