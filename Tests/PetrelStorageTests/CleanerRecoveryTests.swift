import Foundation
import PetrelProtocol
import PetrelTestSupport
import Testing

@testable import PetrelStorage

/// Every point at which a crash can interrupt the cleaner's swap (see `CleanerFiles`): recovery must
/// leave either all the old segments or the cleaned one, never a mix.
@Suite("Cleaner crash recovery")
struct CleanerRecoveryTests {
    /// A log of many small segments (`old`) and a copy of it cleaned into one segment (`cleaned`).
    private struct Fixture {
        let old: TemporaryDirectory
        let cleaned: TemporaryDirectory
        let oldRecords: [Record]
        let cleanedRecords: [Record]
        let oldBases: [Int64]
        let cleanedBases: [Int64]

        init() throws {
            old = try TemporaryDirectory()
            cleaned = try TemporaryDirectory()
            let log = try openLog(old.path, config: compactedConfig(segmentBytes: 250))
            for round in 0..<6 {
                try log.appendUpdates((0..<4).map { Update(key: "k\($0)", value: "v\(round)") })
                if round == 2 { try log.appendUpdates([Update(key: "k1", value: nil)]) }
            }
            try log.appendUntilRolled(Update(key: "k9", value: "last"))
            try log.close()
            oldRecords = try log.readAll()
            oldBases = log.segmentBaseOffsets
            try FileManager.default.removeItem(atPath: cleaned.path)
            try FileManager.default.copyItem(atPath: old.path, toPath: cleaned.path)
            // One big group: every cleanable segment goes into one cleaned segment.
            let copy = try openLog(cleaned.path, config: compactedConfig(segmentBytes: 1 << 20), clean: true)
            _ = try copy.clean(memoryBytes: 1 << 20, now: LogCleaningTests.now)
            try copy.close()
            cleanedRecords = try copy.readAll()
            cleanedBases = copy.segmentBaseOffsets
        }

        func remove() {
            old.remove()
            cleaned.remove()
        }

        /// Puts the cleaned segment's files into the old log's folder under `stage` names.
        func stage(_ stage: String, suffixes: [String] = LogSegment.fileSuffixes) throws {
            for suffix in suffixes {
                let name = LogSegment.fileName(baseOffset: 0, suffix: suffix)
                try FileManager.default.copyItem(
                    atPath: cleaned.path + "/" + name,
                    toPath: old.path + "/" + name + stage
                )
            }
        }

        func reopenAfterCrash() throws -> PartitionLog {
            try openLog(old.path, config: compactedConfig(), clean: false)
        }
    }

    @Test("the fixture: cleaning merged several segments into one that ends where they ended")
    func fixture() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        #expect(fixture.oldBases.count > 3)
        #expect(fixture.cleanedBases == [0, fixture.oldBases.last!])
        #expect(fixture.cleanedRecords.count < fixture.oldRecords.count)
    }

    @Test("crash while writing .cleaned files: they are deleted and the old segments stay")
    func beforeCommit() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        try fixture.stage(CleanerFiles.cleaned)
        let log = try fixture.reopenAfterCrash()
        #expect(try log.readAll() == fixture.oldRecords)
        #expect(log.segmentBaseOffsets == fixture.oldBases)
        #expect(!files(in: fixture.old.path).contains { $0.hasSuffix(".cleaned") })
    }

    @Test("crash after the indexes but before the log became .swap: the cleaning is rolled back")
    func indexesSwappedOnly() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        try fixture.stage(CleanerFiles.swap, suffixes: [".index", ".timeindex"])
        try fixture.stage(CleanerFiles.cleaned, suffixes: [".log"])
        let log = try fixture.reopenAfterCrash()
        #expect(try log.readAll() == fixture.oldRecords)
        #expect(!files(in: fixture.old.path).contains { $0.hasSuffix(".swap") || $0.hasSuffix(".cleaned") })
    }

    @Test("crash right after the commit (.swap): the swap is completed")
    func afterCommit() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        try fixture.stage(CleanerFiles.swap)
        let log = try fixture.reopenAfterCrash()
        #expect(try log.readAll() == fixture.cleanedRecords)
        #expect(log.segmentBaseOffsets == fixture.cleanedBases)
        #expect(!files(in: fixture.old.path).contains { $0.hasSuffix(".swap") })
    }

    @Test("crash while old segments were being deleted: the swap is completed")
    func midDeletion() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        try fixture.stage(CleanerFiles.swap)
        for base in fixture.oldBases.dropFirst().dropLast().prefix(2) {
            LogSegment.deleteFiles(directory: fixture.old.path, baseOffset: base)
        }
        let log = try fixture.reopenAfterCrash()
        #expect(try log.readAll() == fixture.cleanedRecords)
        #expect(log.segmentBaseOffsets == fixture.cleanedBases)
    }

    @Test("crash after the indexes took their final names but before the log did: completed, indexes rebuilt")
    func midRename() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        try fixture.stage(CleanerFiles.swap, suffixes: [".log"])
        for base in fixture.oldBases.dropFirst().dropLast() {
            LogSegment.deleteFiles(directory: fixture.old.path, baseOffset: base)
        }
        for suffix in [".index", ".timeindex"] {
            let name = LogSegment.fileName(baseOffset: 0, suffix: suffix)
            try FileManager.default.removeItem(atPath: fixture.old.path + "/" + name)
            try FileManager.default.copyItem(
                atPath: fixture.cleaned.path + "/" + name,
                toPath: fixture.old.path + "/" + name
            )
        }
        let log = try fixture.reopenAfterCrash()
        #expect(try log.readAll() == fixture.cleanedRecords)
        // Reads that go through the index land on the right batches.
        for record in fixture.cleanedRecords {
            #expect(try log.readAll(from: record.offset).first == record)
        }
    }

    @Test("a clean restart after a completed cleaning trusts the new files")
    func afterCompletion() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let log = try openLog(fixture.cleaned.path, config: compactedConfig(), clean: true)
        #expect(try log.readAll() == fixture.cleanedRecords)
        #expect(files(in: fixture.cleaned.path).allSatisfy { !$0.hasSuffix(".swap") && !$0.hasSuffix(".cleaned") })
    }
}
