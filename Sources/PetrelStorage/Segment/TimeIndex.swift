/// The time index of one segment (`<base>.timeindex`): 12-byte entries, a timestamp (Int64, big-endian)
/// and the offset, relative to the segment base (UInt32, big-endian), of the batch in which the
/// segment's largest timestamp so far was seen. Entries are added at most once per index interval and
/// only when the largest timestamp grows, so timestamps in the index increase strictly.
///
/// Like the offset index it is a cache of the log, rebuilt after an unclean shutdown.
/// Not thread-safe: its owner (a `PartitionLog`) serialises access.
final class TimeIndex {
    struct Entry: Equatable {
        var timestamp: Int64
        var relativeOffset: UInt32
    }

    static let entrySize = 12

    let cachedFile: CachedFile
    let baseOffset: Int64
    private(set) var entries: [Entry] = []

    /// Opens (or creates) the index file and loads its entries.
    init(file: CachedFile, baseOffset: Int64) throws {
        self.cachedFile = file
        self.baseOffset = baseOffset
        try load(try file.open(create: true))
    }

    /// The index file, opened through the cache if it was closed while idle.
    var file: FileDescriptor { get throws { try cachedFile.open() } }

    private func load(_ file: FileDescriptor) throws {
        entries = try readFixedSizeEntries(of: file, entrySize: Self.entrySize) { bytes, at in
            Entry(
                timestamp: Int64(bitPattern: bigEndianUInt64(bytes, at)),
                relativeOffset: bigEndianUInt32(bytes, at + 8)
            )
        }
    }

    func isConsistent(nextOffset: Int64) -> Bool {
        var previous: Entry?
        for entry in entries {
            if let previous, entry.timestamp <= previous.timestamp || entry.relativeOffset < previous.relativeOffset {
                return false
            }
            if baseOffset + Int64(entry.relativeOffset) >= nextOffset { return false }
            previous = entry
        }
        return true
    }

    var lastEntry: Entry? { entries.last }

    /// Records that the segment's largest timestamp grew to `timestamp` in the batch at `offset`.
    func append(timestamp: Int64, offset: Int64) throws {
        if let last = entries.last, timestamp <= last.timestamp { return }
        let entry = Entry(timestamp: timestamp, relativeOffset: UInt32(offset - baseOffset))
        var bytes: (UInt64, UInt32) = (UInt64(bitPattern: entry.timestamp).bigEndian, entry.relativeOffset.bigEndian)
        try withUnsafeBytes(of: &bytes) { raw in
            // The tuple is padded to 16 bytes; only the first 12 are the entry.
            try file.write(
                UnsafeRawBufferPointer(rebasing: raw[0..<Self.entrySize]),
                at: entries.count * Self.entrySize
            )
        }
        entries.append(entry)
    }

    /// The last entry whose timestamp is below `timestamp`: every batch up to and including its offset has
    /// only smaller timestamps, so a search for the first record at or after `timestamp` starts there.
    func lastEntry(before timestamp: Int64) -> Entry? {
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].timestamp < timestamp { low = middle + 1 } else { high = middle }
        }
        return low == 0 ? nil : entries[low - 1]
    }

    func reset() throws {
        entries.removeAll()
        try file.truncate(to: 0)
    }
}
