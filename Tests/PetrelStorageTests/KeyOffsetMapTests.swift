import Testing

@testable import PetrelStorage

@Suite("The cleaner's key → offset map")
struct KeyOffsetMapTests {
    private func put(_ map: inout KeyOffsetMap, _ key: String, _ offset: Int64) -> Bool {
        Array(key.utf8).withUnsafeBytes { map.put(key: $0, offset: offset) }
    }

    private func offset(_ map: KeyOffsetMap, _ key: String) -> Int64? {
        Array(key.utf8).withUnsafeBytes { map.offset(of: $0) }
    }

    @Test("a key's latest offset wins; unknown keys have none; keys differing in one byte are apart")
    func latestWins() {
        var map = KeyOffsetMap(memoryBytes: 24 * 64)
        #expect(put(&map, "order-1", 0) && put(&map, "order-2", 1) && put(&map, "order-1", 5))
        #expect(put(&map, "order-10", 6))
        #expect(offset(map, "order-1") == 5 && offset(map, "order-2") == 1 && offset(map, "order-10") == 6)
        #expect(offset(map, "order-3") == nil)
        #expect(map.count == 3 && map.latestOffset == 6)
        #expect([UInt8]().withUnsafeBytes { map.offset(of: $0) } == nil, "the empty key is a key like any")
    }

    @Test("the memory budget bounds the slots; a full map refuses new keys but still updates known ones")
    func bounded() {
        var map = KeyOffsetMap(memoryBytes: 24 * 100)
        #expect(map.capacity == 64, "the largest power of two within the budget")
        var accepted = 0
        for index in 0..<100 where put(&map, "key-\(index)", Int64(index)) { accepted += 1 }
        #expect(accepted == 58 && map.isFull, "0.9 of 64 slots, then full")
        #expect(put(&map, "key-0", 500), "a known key is updated even when full")
        #expect(offset(map, "key-0") == 500)
        #expect(!put(&map, "key-99", 501) && offset(map, "key-99") == nil)
        map.clear()
        #expect(map.count == 0 && !map.isFull && offset(map, "key-0") == nil && map.latestOffset == -1)
        #expect(put(&map, "key-99", 7) && offset(map, "key-99") == 7)
    }
}
