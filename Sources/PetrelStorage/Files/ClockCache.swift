/// A cache of at most `capacity` values with CLOCK (second-chance) eviction: a hit marks its slot; when
/// the cache is full, a hand sweeps the slots, clearing marks, and evicts the first unmarked one. Close to
/// least-recently-used at O(1) per operation, with no list to reorder on every hit. A value type, without
/// locks; `FileCache` keeps one behind its lock.
struct ClockCache<Key: Hashable, Value> {
    private struct Slot {
        var key: Key
        var value: Value
        var referenced: Bool
    }

    let capacity: Int
    private var slots: [Slot?] = []
    private var positions: [Key: Int] = [:]
    /// Slots emptied by `remove`, reused before the hand evicts anything.
    private var free: [Int] = []
    private var hand = 0

    init(capacity: Int) {
        precondition(capacity > 0, "a cache holds at least one value")
        self.capacity = capacity
    }

    var count: Int { positions.count }

    /// The value for `key`, marked as recently used.
    mutating func value(for key: Key) -> Value? {
        guard let position = positions[key] else { return nil }
        slots[position]!.referenced = true
        return slots[position]!.value
    }

    /// Adds (or replaces) the value for `key`. Returns what had to go to make room, for the caller to
    /// release outside its lock.
    mutating func insert(_ value: Value, for key: Key) -> (key: Key, value: Value)? {
        if let position = positions[key] {
            slots[position] = Slot(key: key, value: value, referenced: true)
            return nil
        }
        var evicted: (key: Key, value: Value)?
        let position: Int
        if let reusable = free.popLast() {
            position = reusable
        } else if slots.count < capacity {
            slots.append(nil)
            position = slots.count - 1
        } else {
            position = victim()
            let old = slots[position]!
            positions[old.key] = nil
            evicted = (old.key, old.value)
        }
        // A new entry starts unmarked: a value used once goes before one used again.
        slots[position] = Slot(key: key, value: value, referenced: false)
        positions[key] = position
        return evicted
    }

    /// Drops `key`'s value, returning it.
    @discardableResult
    mutating func remove(_ key: Key) -> Value? {
        guard let position = positions.removeValue(forKey: key) else { return nil }
        let value = slots[position]!.value
        slots[position] = nil
        free.append(position)
        return value
    }

    /// The slot the hand stops at: the first unmarked one, clearing marks on the way. Every slot is full
    /// when this is called, so at most two sweeps find one.
    private mutating func victim() -> Int {
        while true {
            let position = hand
            hand = (hand + 1) % slots.count
            if slots[position]!.referenced {
                slots[position]!.referenced = false
            } else {
                return position
            }
        }
    }
}
