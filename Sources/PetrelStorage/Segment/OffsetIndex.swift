/// The sparse offset index of one segment (`<base>.index`): 8-byte entries, each the offset of a batch
/// relative to the segment's base offset (UInt32, big-endian) and the byte position where that batch
/// starts in the `.log` file (UInt32, big-endian). An entry is added every `indexIntervalBytes` of log.
///
/// The entries live in memory for lookups and are appended to the file as they are made. The index is a
/// cache of the log: after an unclean shutdown it is rebuilt from the log, never trusted.
///
/// Not thread-safe: its owner (a `PartitionLog`) serialises access.
final class OffsetIndex {
    struct Entry: Equatable {
        var relativeOffset: UInt32
        var position: UInt32
    }

    static let entrySize = 8

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
            Entry(relativeOffset: bigEndianUInt32(bytes, at), position: bigEndianUInt32(bytes, at + 4))
        }
    }

    /// Whether the entries increase strictly and stay inside a log of `logSize` bytes.
    func isConsistent(logSize: Int) -> Bool {
        var previous: Entry?
        for entry in entries {
            if let previous, entry.relativeOffset <= previous.relativeOffset || entry.position <= previous.position {
                return false
            }
            if Int(entry.position) >= logSize { return false }
            previous = entry
        }
        return true
    }

    var lastEntry: Entry? { entries.last }

    func append(offset: Int64, position: Int) throws {
        let entry = Entry(relativeOffset: UInt32(offset - baseOffset), position: UInt32(position))
        var bytes: (UInt32, UInt32) = (entry.relativeOffset.bigEndian, entry.position.bigEndian)
        try withUnsafeBytes(of: &bytes) { try file.write($0, at: entries.count * Self.entrySize) }
        entries.append(entry)
    }

    /// The last entry whose offset is at or below `offset`: where a scan for it may start.
    func floorEntry(offset: Int64) -> Entry? {
        let target = offset - baseOffset
        guard target >= 0 else { return nil }
        return floor { Int64($0.relativeOffset) <= target }
    }

    /// The last entry whose position is at or below `position`.
    func floorEntry(position: Int) -> Entry? {
        floor { Int($0.position) <= position }
    }

    /// Binary search for the last entry satisfying a predicate that holds for a prefix of the entries.
    private func floor(_ isAtOrBelow: (Entry) -> Bool) -> Entry? {
        // The newest entries are the likeliest targets (consumers near the end): check the tail first.
        if let last = entries.last, isAtOrBelow(last) { return last }
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if isAtOrBelow(entries[middle]) { low = middle + 1 } else { high = middle }
        }
        return low == 0 ? nil : entries[low - 1]
    }

    func reset() throws {
        entries.removeAll()
        try file.truncate(to: 0)
    }
}

/// Reads an index file of fixed-size entries, cutting off a partial last entry (a torn write).
func readFixedSizeEntries<Entry>(
    of file: FileDescriptor,
    entrySize: Int,
    _ decode: ([UInt8], Int) -> Entry
) throws -> [Entry] {
    let size = try file.size()
    var bytes = [UInt8](repeating: 0, count: size - size % entrySize)
    let read = try bytes.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }
    let count = read / entrySize
    if size != count * entrySize { try file.truncate(to: count * entrySize) }
    return (0..<count).map { decode(bytes, $0 * entrySize) }
}

@inline(__always)
func bigEndianUInt32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
    UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
}

@inline(__always)
func bigEndianUInt64(_ bytes: [UInt8], _ at: Int) -> UInt64 {
    UInt64(bigEndianUInt32(bytes, at)) << 32 | UInt64(bigEndianUInt32(bytes, at + 4))
}
