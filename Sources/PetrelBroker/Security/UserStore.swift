import Foundation
import PetrelSASL
import PetrelStorage
import Synchronization

/// The users a SASL listener lets in, kept in one JSON file of SCRAM credentials (no passwords) that
/// `petrel users` edits. The broker rereads the file when it changes, so users added or removed while
/// it runs take effect at the next authentication; connections already in stay in.
public final class UserStore: Sendable {
    public struct UsersFile: Codable, Sendable {
        public var users: [String: ScramCredential] = [:]
        public init() {}
    }

    public enum StoreError: Error, CustomStringConvertible {
        case unreadable(path: String, reason: String)
        case unwritable(path: String, reason: String)
        public var description: String {
            switch self {
            case .unreadable(let path, let reason): "cannot read the users file \(path): \(reason)"
            case .unwritable(let path, let reason): "cannot write the users file \(path): \(reason)"
            }
        }
    }

    public let path: String
    private struct Cache {
        var modified: Date?
        var size: Int = -1
        var users: [String: ScramCredential] = [:]
    }
    private let cache = Mutex(Cache())

    public init(path: String) {
        self.path = path
    }

    /// The user's credential, or nil if there is no such user (or no file: nobody gets in).
    public func credential(for user: String) -> ScramCredential? {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        let modified = attributes?[.modificationDate] as? Date
        let size = (attributes?[.size] as? Int) ?? -1
        return cache.withLock { cache in
            if cache.modified != modified || cache.size != size {
                cache.users = (try? Self.load(path))?.users ?? [:]
                cache.modified = modified
                cache.size = size
            }
            return cache.users[user]
        }
    }

    /// Reads the file; a missing file is an empty one.
    public static func load(_ path: String) throws -> UsersFile {
        guard FileManager.default.fileExists(atPath: path) else { return UsersFile() }
        do {
            return try JSONDecoder().decode(UsersFile.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw StoreError.unreadable(path: path, reason: "\(error)")
        }
    }

    /// Writes the file whole, readable by its owner only, through a rename so a reader never sees half
    /// and a power failure leaves the old file or the new one.
    public static func save(_ file: UsersFile, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(file)
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        do {
            try writeAtomically(Array(data), to: path, permissions: 0o600)
        } catch let error as StorageError {
            throw StoreError.unwritable(path: path, reason: error.reason)
        }
    }
}
