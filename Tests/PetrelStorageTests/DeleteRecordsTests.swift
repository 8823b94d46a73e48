import PetrelProtocol
import PetrelStorage
import PetrelTestSupport
import Testing

@Suite("Deleting records (the log start offset)")
struct DeleteRecordsTests {
    @Test("the log start moves forward only, hides what is below it, and drops whole segments below it")
    func moveLogStart() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        var config = LogConfig()
        config.segmentBytes = 600
        let log = try openLog(folder.path, config: config)
        for _ in 0..<12 { try log.appendRecords(3) }
        let segmentsBefore = log.segmentBaseOffsets
        #expect(segmentsBefore.count >= 3)
        let target = segmentsBefore[2] + 1
        #expect(try log.deleteRecords(before: target) == target)
        #expect(log.logStartOffset == target)
        #expect(log.segmentBaseOffsets.first == segmentsBefore[2], "segments wholly below the start are gone")
        #expect(throws: PartitionLog.ReadError.self) { try log.read(from: target - 1, maxBytes: 1000) }
        #expect(try log.read(from: target, maxBytes: 1000).slice != nil)
        #expect(try log.deleteRecords(before: 1) == target, "backwards changes nothing")
        #expect(throws: PartitionLog.ReadError.self) { try log.deleteRecords(before: log.logEndOffset + 1) }
        #expect(try log.deleteRecords(before: -1) == log.logEndOffset, "-1 is the high watermark")
        #expect(try log.appendRecords(1) == 36, "offsets go on where they were")
    }

    @Test("the log start survives a restart, clean or not, through its checkpoint")
    func durable() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        do {
            let manager = try LogManager(directory: folder.path, defaults: LogConfig(), logger: testLogger)
            try manager.createTopic(name: "orders", partitionCount: 1)
            for _ in 0..<5 { try manager.partition(topic: "orders", partition: 0)!.appendRecords(2) }
            #expect(try manager.deleteRecords(topic: "orders", partition: 0, before: 7) == 7)
            // No shutdown: as after kill -9.
        }
        let reopened = try LogManager(directory: folder.path, defaults: LogConfig(), logger: testLogger)
        #expect(reopened.partition(topic: "orders", partition: 0)?.logStartOffset == 7)
        #expect(reopened.partition(topic: "orders", partition: 0)?.logEndOffset == 10)
        #expect(throws: TopicError.unknownTopic("nowhere")) {
            try reopened.deleteRecords(topic: "nowhere", partition: 0, before: 1)
        }
    }
}
