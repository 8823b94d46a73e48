/// The log cleaner's memory: for each record key seen in the dirty part of a log, the offset of its
/// latest record. Fixed in size (a byte budget, like Kafka's log.cleaner.dedupe.buffer.size): keys are
/// held as 16-byte MD5 digests with their offset, 24 bytes a slot, in one open-addressing table that is
/// never resized. Once it is `isFull` (Kafka's load factor, 0.9), the cleaner cleans what the map covers
/// and starts another pass. Two keys with the same digest would be taken for one: as in Kafka, the odds
/// are accepted (2^-128 per pair).
struct KeyOffsetMap {
    private struct Slot {
        var high: UInt64 = 0
        var low: UInt64 = 0
        /// -1 while the slot is free.
        var offset: Int64 = -1
    }

    static let bytesPerSlot = 24
    static let loadFactor = 0.9

    private var slots: [Slot]
    private let mask: Int
    /// Keys held.
    private(set) var count = 0
    /// The largest offset put so far (-1 before the first): how far the map covers the log.
    private(set) var latestOffset: Int64 = -1

    /// A map within `memoryBytes` (at least one slot): the slot count is the largest power of two that fits.
    init(memoryBytes: Int) {
        var capacity = 1
        while capacity * 2 * Self.bytesPerSlot <= memoryBytes { capacity *= 2 }
        slots = Array(repeating: Slot(), count: capacity)
        mask = capacity - 1
    }

    var capacity: Int { slots.count }

    /// The memory a map needs for `keys` keys (an upper bound the caller knows, such as the offsets in
    /// the dirty part), but no more than `budget`: a small log does not take the whole budget.
    static func bytesNeeded(keys: Int64, budget: Int) -> Int {
        var capacity = 1
        while Double(capacity) * loadFactor < Double(keys) + 1, capacity * 2 * bytesPerSlot <= budget { capacity *= 2 }
        return capacity * bytesPerSlot
    }

    /// No more keys should be added (the cleaner cleans what it has and starts another pass).
    var isFull: Bool { Double(count) >= Double(capacity) * Self.loadFactor }

    /// Records that `key`'s latest record is at `offset` (offsets are put in increasing order, so a later
    /// put of a key replaces the earlier). False if the map is full and `key` is new to it.
    @discardableResult
    mutating func put(key: UnsafeRawBufferPointer, offset: Int64) -> Bool {
        let (high, low) = Self.digest(key)
        var index = Int(truncatingIfNeeded: low) & mask
        while slots[index].offset >= 0 {
            if slots[index].high == high && slots[index].low == low {
                slots[index].offset = offset
                latestOffset = max(latestOffset, offset)
                return true
            }
            index = (index + 1) & mask
        }
        guard !isFull else { return false }
        slots[index] = Slot(high: high, low: low, offset: offset)
        count += 1
        latestOffset = max(latestOffset, offset)
        return true
    }

    /// The offset of `key`'s latest record, if the map holds the key.
    func offset(of key: UnsafeRawBufferPointer) -> Int64? {
        let (high, low) = Self.digest(key)
        var index = Int(truncatingIfNeeded: low) & mask
        while slots[index].offset >= 0 {
            if slots[index].high == high && slots[index].low == low { return slots[index].offset }
            index = (index + 1) & mask
        }
        return nil
    }

    /// Empties the map for the next pass, keeping its memory.
    mutating func clear() {
        for index in slots.indices { slots[index].offset = -1 }
        count = 0
        latestOffset = -1
    }

    private static func digest(_ key: UnsafeRawBufferPointer) -> (UInt64, UInt64) {
        MD5.digest(key)
    }
}
