import Logging
import PetrelProtocol

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How the cleaner puts rewritten segments in place of old ones so that a crash at any moment leaves
/// either the old segments or the new, never a mix (the suffixes are Kafka's):
///
/// 1. The cleaned segment is written as `<base>.log.cleaned` (+ `.index.cleaned`, `.timeindex.cleaned`),
///    where `<base>` is the first old segment's base, and fsynced.
/// 2. Its indexes, then its log, are renamed to `.swap`; the folder is fsynced. The log's `.swap` name is
///    the commit point: from here on the new segment wins.
/// 3. The old segments it replaces are deleted, the `.swap` files renamed to their final names (the log's
///    replacing the first old segment's), and the folder fsynced.
///
/// A cleaned segment always ends where the last old one ended (the cleaner keeps the last batch, if need
/// be emptied of its records), so a `.swap` log says by itself which old segments it replaces: those
/// whose base lies in its offset range.
enum CleanerFiles {
    static let cleaned = ".cleaned"
    static let swap = ".swap"

    /// At startup, before the segments are read: deletes `.cleaned` files (a cleaning that had not
    /// committed) and completes every committed swap. Returns the bases of the segments swapped in, whose
    /// indexes must be rebuilt.
    static func finishInterruptedCleaning(directory: String, logger: Logger) throws -> Set<Int64> {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        for name in names where name.hasSuffix(cleaned) {
            unlinkFile(directory + "/" + name)
        }
        let swapBases = names.compactMap { name -> Int64? in
            guard name.hasSuffix(".log" + swap) else { return nil }
            return Int64(name.prefix(20))
        }
        var completed = Set<Int64>()
        for base in swapBases.sorted() {
            let swapLog = path(directory, base, ".log") + swap
            let end = try nextOffset(ofLog: swapLog, baseOffset: base)
            for name in names where name.hasSuffix(".log") && name.count == 24 {
                guard let old = Int64(name.dropLast(4)), old > base, old < end else { continue }
                LogSegment.deleteFiles(directory: directory, baseOffset: old)
            }
            // The indexes are rebuilt from the log: whether theirs were renamed too does not matter.
            for suffix in [".index", ".timeindex"] {
                unlinkFile(path(directory, base, suffix) + swap)
                unlinkFile(path(directory, base, suffix))
            }
            // The aborted-transaction index cannot be rebuilt from the log alone: it was renamed to .swap
            // before the log was, so it is either still there or already in place.
            let transactions = path(directory, base, TransactionIndex.suffix)
            if fileExists(transactions + swap) { try move(transactions + swap, to: transactions) }
            try move(swapLog, to: path(directory, base, ".log"))
            completed.insert(base)
            logger.notice(
                "completed a log cleaning interrupted by a crash",
                metadata: ["segment": "\(base)", "endOffset": "\(end)"]
            )
        }
        // Index swaps whose log never reached `.swap` belong to a cleaning that did not commit.
        for name in names where name.hasSuffix(swap) && !name.hasSuffix(".log" + swap) {
            if let base = Int64(name.prefix(20)), !completed.contains(base) { unlinkFile(directory + "/" + name) }
        }
        if !completed.isEmpty { try syncDirectory(directory) }
        return completed
    }

    /// Step 2 for one cleaned segment: its `.cleaned` files become `.swap` files, the log last.
    static func markForSwap(directory: String, baseOffset: Int64) throws {
        let transactions = path(directory, baseOffset, TransactionIndex.suffix)
        if fileExists(transactions + cleaned) { try move(transactions + cleaned, to: transactions + swap) }
        for suffix in [".index", ".timeindex", ".log"] {
            let file = path(directory, baseOffset, suffix)
            try move(file + cleaned, to: file + swap)
        }
    }

    /// Step 3 for one cleaned segment: the old segments it replaces go, its `.swap` files take their names.
    static func swapIn(directory: String, baseOffset: Int64, replacing old: [Int64]) throws {
        for base in old where base != baseOffset { LogSegment.deleteFiles(directory: directory, baseOffset: base) }
        let transactions = path(directory, baseOffset, TransactionIndex.suffix)
        if fileExists(transactions + swap) {
            try move(transactions + swap, to: transactions)
        } else {
            unlinkFile(transactions)
        }
        for suffix in [".index", ".timeindex", ".log"] {
            let file = path(directory, baseOffset, suffix)
            try move(file + swap, to: file)
        }
    }

    /// Removes what a cleaning that gives up wrote.
    static func discard(directory: String, baseOffset: Int64) {
        for suffix in LogSegment.allFileSuffixes {
            unlinkFile(path(directory, baseOffset, suffix) + cleaned)
            unlinkFile(path(directory, baseOffset, suffix) + swap)
        }
    }

    static func path(_ directory: String, _ baseOffset: Int64, _ suffix: String) -> String {
        directory + "/" + LogSegment.fileName(baseOffset: baseOffset, suffix: suffix)
    }

    static func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    private static func move(_ from: String, to: String) throws {
        guard rename(from, to) == 0 else { throw StorageError("rename to \(to)", path: from, errno: errno) }
    }

    /// The offset after the last whole batch of a log file (its base if it has none).
    private static func nextOffset(ofLog path: String, baseOffset: Int64) throws -> Int64 {
        let reader = SegmentReader(
            file: try FileDescriptor(opening: path, create: false, readOnly: true),
            baseOffset: baseOffset
        )
        let size = try reader.file.size()
        var position = 0
        var next = baseOffset
        while let header = try reader.readHeader(at: position), position + header.totalSize <= size {
            next = header.nextOffset
            position += header.totalSize
        }
        return next
    }
}
