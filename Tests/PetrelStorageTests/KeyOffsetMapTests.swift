import Crypto
import Foundation
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

@Suite("The key map's MD5")
struct MD5Tests {
    private func hex(_ text: String) -> String {
        var bytes = Array(text.utf8)
        let (first, second) = bytes.withUnsafeMutableBytes { MD5.digest(UnsafeRawBufferPointer($0)) }
        return withUnsafeBytes(of: (first.littleEndian, second.littleEndian)) { raw in
            raw.map { String(format: "%02x", $0) }.joined()
        }
    }

    @Test("RFC 1321's test suite")
    func rfcVectors() {
        #expect(hex("") == "d41d8cd98f00b204e9800998ecf8427e")
        #expect(hex("a") == "0cc175b9c0f1b6a831c399e269772661")
        #expect(hex("abc") == "900150983cd24fb0d6963f7d28e17f72")
        #expect(hex("message digest") == "f96b697d7cb7938d525a2f31aaf161d0")
        #expect(hex("abcdefghijklmnopqrstuvwxyz") == "c3fcd3d76192e4007dfb496cca67e13b")
        #expect(
            hex("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") == "d174ab98d277d9f5a5611c2c9f419d9f"
        )
        #expect(hex(String(repeating: "1234567890", count: 8)) == "57edf4a22be3c955ac49da2e2107b67a")
    }

    @Test("the same digest as swift-crypto's for every length around the block boundaries")
    func matchesReference() {
        var generator = SystemRandomNumberGenerator()
        for length in Array(0...200) + [1000, 4097] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let reference = Array(Insecure.MD5.hash(data: bytes))
            let ours = bytes.withUnsafeBytes { MD5.digest($0) }
            let oursBytes = withUnsafeBytes(of: (ours.0.littleEndian, ours.1.littleEndian)) { Array($0) }
            #expect(oursBytes == reference, "length \(length)")
        }
    }
}
