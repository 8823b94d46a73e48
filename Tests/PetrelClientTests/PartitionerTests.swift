import NIOCore
import PetrelClient
import PetrelProtocol
import Testing

@Suite("Partitioner and assignors")
struct PartitionerTests {
    /// Vectors from the Java client's murmur2 (as kafka-python reproduces it), as signed 32-bit values.
    static let vectors: [(String, Int32)] = [
        ("", 275_646_681),
        ("a", Int32(bitPattern: 2_731_586_172)),
        ("ab", 316_155_434),
        ("abc", 479_470_107),
        ("21", -973_932_308),
        ("foobar", Int32(bitPattern: 3_504_634_814)),
        ("order-1", 1_221_710_326),
        ("customer-42", Int32(bitPattern: 3_751_979_801)),
        ("a-little-bit-long-string", Int32(bitPattern: 3_308_985_760)),
        ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", Int32(bitPattern: 4_236_069_325)),
    ]

    @Test("murmur2 matches the Java client's", arguments: vectors)
    func murmur2(key: String, expected: Int32) {
        #expect(Partitioner.murmur2(ByteBuffer(string: key)) == expected)
    }

    @Test("keys map to the partitions the Java partitioner picks")
    func partitions() {
        // toPositive(murmur2(key)) % 12
        let expected: [String: Int32] = [
            "": 9, "a": 4, "ab": 2, "abc": 3, "21": 0, "foobar": 6, "order-1": 10, "customer-42": 9,
        ]
        for (key, partition) in expected {
            #expect(Partitioner.partition(forKey: ByteBuffer(string: key), partitionCount: 12) == partition, "\(key)")
        }
        #expect(Partitioner.murmur2(ByteBuffer(bytes: [0, 1, 2, 3, 4, 5, 6])) == Int32(bitPattern: 2_806_798_476))
    }

    @Test("range gives each member a contiguous run per topic, the first ones one extra")
    func range() {
        let plan = AssignmentStrategy.range.assign(
            subscriptions: ["b": ["orders"], "a": ["orders", "payments"], "c": ["orders"]],
            partitionCounts: ["orders": 7, "payments": 2]
        )
        #expect(
            plan["a"] == [0, 1, 2].map { TopicPartition("orders", $0) } + [0, 1].map { TopicPartition("payments", $0) }
        )
        #expect(plan["b"] == [3, 4].map { TopicPartition("orders", $0) })
        #expect(plan["c"] == [5, 6].map { TopicPartition("orders", $0) })
    }

    @Test("round-robin deals partitions in turn, skipping members not subscribed")
    func roundRobin() {
        let plan = AssignmentStrategy.roundRobin.assign(
            subscriptions: ["a": ["t"], "b": ["t", "u"]],
            partitionCounts: ["t": 3, "u": 2]
        )
        #expect(plan["a"] == [TopicPartition("t", 0), TopicPartition("t", 2)])
        #expect(plan["b"] == [TopicPartition("t", 1), TopicPartition("u", 0), TopicPartition("u", 1)])
        let all = (plan["a"]! + plan["b"]!).sorted()
        #expect(all == [0, 1, 2].map { TopicPartition("t", $0) } + [0, 1].map { TopicPartition("u", $0) })
    }
}
