import Foundation
import PetrelProtocol
import PetrelStorage
import PetrelTestSupport
import Testing

@Suite("Log manager")
struct LogManagerTests {
    @Test("topics persist with their id and partitions; the clean-shutdown marker is honoured")
    func persistence() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let created: TopicDescription
        do {
            let manager = try LogManager(directory: folder.path, defaults: LogConfig(), logger: testLogger)
            #expect(!manager.startedClean)
            created = try manager.createTopic(
                name: "orders",
                partitionCount: 3,
                configOverrides: ["retention.ms": "1000"]
            )
            try manager.partition(topic: "orders", partition: 2)!.appendRecords(5)
            try manager.shutdown()
        }
        #expect(FileManager.default.fileExists(atPath: folder.path + "/.clean-shutdown"))
        let manager = try LogManager(directory: folder.path, defaults: LogConfig(), logger: testLogger)
        #expect(manager.startedClean)
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/.clean-shutdown"))
        let topic = try #require(manager.topic(named: "orders"))
        #expect(topic == created)
        #expect(manager.partition(topic: "orders", partition: 2)?.logEndOffset == 5)
        #expect(manager.partition(topic: "orders", partition: 2)?.config.retentionMs == 1000)
        #expect(manager.partition(topic: "orders", partition: 3) == nil)
        let metadata = try String(contentsOfFile: folder.path + "/orders-1/partition.metadata", encoding: .utf8)
        #expect(metadata == "version: 0\ntopic_id: \(created.id)\n")
    }

    @Test("empty text files, as a power failure can leave them, do not stop a start")
    func emptyTextFiles() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        do {
            let manager = try LogManager(directory: folder.path, defaults: LogConfig(), logger: testLogger)
            try manager.createTopic(name: "orders", partitionCount: 2, configOverrides: ["retention.ms": "1000"])
            try manager.partition(topic: "orders", partition: 1)!.appendRecords(4)
            try manager.shutdown()
        }
        for name in [
            "recovery-point-offset-checkpoint", "topic-configs/orders.properties", "orders-0/partition.metadata",
        ] {
            truncate(folder.path + "/" + name, 0)
        }
        unlink(folder.path + "/.clean-shutdown")
        let manager = try LogManager(directory: folder.path, defaults: LogConfig(), logger: testLogger)
        #expect(!manager.startedClean)
        #expect(manager.partition(topic: "orders", partition: 1)?.logEndOffset == 4)
        #expect(manager.partition(topic: "orders", partition: 0)?.logEndOffset == 0)
    }

    @Test("a topic deleted and created again starts empty at offset 0 with a new id")
    func recreate() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let manager = try LogManager(directory: folder.path, defaults: LogConfig(), logger: testLogger)
        let first = try manager.createTopic(name: "a-b.c_d", partitionCount: 1)
        let old = try #require(manager.partition(topic: "a-b.c_d", partition: 0))
        try old.appendRecords(7)
        try manager.deleteTopic(name: "a-b.c_d")
        #expect(manager.topic(named: "a-b.c_d") == nil)
        #expect(throws: (any Error).self) { try old.appendRecords(1) }
        let second = try manager.createTopic(name: "a-b.c_d", partitionCount: 1)
        #expect(second.id != first.id)
        #expect(manager.partition(topic: "a-b.c_d", partition: 0)?.logEndOffset == 0)
        #expect(files(in: folder.path).filter { $0.hasPrefix("a-b.c_d") } == ["a-b.c_d-0"])
    }

    @Test("bad names, partition counts, configs and duplicates are refused")
    func refusals() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let manager = try LogManager(directory: folder.path, defaults: LogConfig(), logger: testLogger)
        #expect(throws: TopicError.self) { try manager.createTopic(name: "no spaces", partitionCount: 1) }
        #expect(throws: TopicError.invalidPartitions(0)) { try manager.createTopic(name: "x", partitionCount: 0) }
        #expect(throws: TopicError.self) {
            try manager.createTopic(name: "x", partitionCount: 1, configOverrides: ["retention.ms": "soon"])
        }
        #expect(throws: TopicError.self) {
            try manager.createTopic(name: "x", partitionCount: 1, configOverrides: ["no.such": "1"])
        }
        _ = try manager.createTopic(name: "x", partitionCount: 1, validateOnly: true)
        #expect(manager.topic(named: "x") == nil)
        _ = try manager.createTopic(name: "x", partitionCount: 1)
        #expect(throws: TopicError.alreadyExists("x")) { try manager.createTopic(name: "x", partitionCount: 1) }
        #expect(throws: TopicError.unknownTopic("y")) { try manager.deleteTopic(name: "y") }
    }

    @Test("producer ids are never handed out twice, across restarts")
    func producerIDs() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        var seen = Set<Int64>()
        for _ in 0..<3 {
            let allocator = try ProducerIDAllocator(directory: folder.path, blockSize: 10)
            for _ in 0..<25 { #expect(seen.insert(try allocator.next()).inserted) }
        }
        #expect(seen.count == 75)
    }
}
