import Foundation
import PetrelStorage
import PetrelTestSupport
import Testing

@Suite("Data directory lock")
struct DataDirectoryLockTests {
    @Test("a second lock on a held directory fails with the holder's pid and changes nothing; release frees it")
    func exclusive() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let data = folder.path + "/data"
        let first = try DataDirectoryLock(directory: data)
        let lockFile = data + "/" + DataDirectoryLock.fileName
        let before = try String(contentsOfFile: lockFile, encoding: .utf8)
        #expect(before == "\(getpid())\n")
        #expect(throws: DataDirectoryError.inUse(directory: data, pid: getpid())) {
            try DataDirectoryLock(directory: data)
        }
        #expect(try String(contentsOfFile: lockFile, encoding: .utf8) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: data) == [DataDirectoryLock.fileName])
        first.release()
        let second = try DataDirectoryLock(directory: data)
        second.release()
    }

    @Test("a lock is dropped when its holder goes away, without release")
    func droppedWithOwner() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        do { _ = try DataDirectoryLock(directory: folder.path) }
        _ = try DataDirectoryLock(directory: folder.path)
    }

    @Test("errors carry the operating system's reason in words")
    func reasons() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let missingParent = folder.path + "/missing/data"
        #expect(
            throws: DataDirectoryError.unusable(
                directory: missingParent,
                action: "create",
                reason: "No such file or directory"
            )
        ) {
            try DataDirectoryLock(directory: missingParent)
        }
        let file = folder.path + "/file"
        #expect(FileManager.default.createFile(atPath: file, contents: nil))
        #expect(throws: DataDirectoryError.unusable(directory: file, action: "use", reason: "Not a directory")) {
            try DataDirectoryLock(directory: file)
        }
        #expect(
            "\(DataDirectoryError.inUse(directory: "d", pid: 42))"
                == "the data directory d is in use by another broker (pid 42)"
        )
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/missing"), "a missing parent is not created")
    }
}
