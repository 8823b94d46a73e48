import Foundation
import Logging
import PetrelProtocol
import PetrelStorage
import PetrelTestSupport
import Testing

@testable import PetrelBroker

@Suite("Committed-offsets log")
struct OffsetStoreTests {
    func open(_ folder: TemporaryDirectory, clean: Bool = false, threshold: Int = 16 << 20) throws -> OffsetStore {
        try OffsetStore(
            dataDirectory: folder.path,
            config: LogConfig(),
            cleanShutdown: clean,
            logger: Logger(label: "test"),
            compactionThresholdBytes: threshold
        )
    }

    @Test("commits replay after a restart, later commits and deletions winning")
    func replay() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        do {
            let store = try open(folder)
            try await store.commit(
                group: "a",
                [TopicPartition("t", 0): CommittedOffset(offset: 1, metadata: "x", commitTimestamp: 5)]
            )
            try await store.commit(group: "a", [TopicPartition("t", 0): CommittedOffset(offset: 2, commitTimestamp: 6)])
            try await store.commit(group: "b", [TopicPartition("t", 1): CommittedOffset(offset: 9, commitTimestamp: 7)])
            try await store.commit(group: "c", [TopicPartition("u", 0): CommittedOffset(offset: 4, commitTimestamp: 7)])
            try await store.deleteGroup("b")
            try await store.deleteTopic("u")
        }
        let reopened = try open(folder)
        #expect(
            reopened.committed(group: "a") == [TopicPartition("t", 0): CommittedOffset(offset: 2, commitTimestamp: 6)]
        )
        #expect(reopened.committed(group: "b").isEmpty)
        #expect(reopened.committed(group: "c").isEmpty)
        #expect(reopened.groups == ["a"])
    }

    @Test("a log of mostly superseded commits is compacted, and replays to the same offsets")
    func compaction() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let expected: [TopicPartition: CommittedOffset]
        do {
            let store = try open(folder, threshold: 20_000)
            for round in 0..<400 {
                try await store.commit(
                    group: "busy",
                    [
                        TopicPartition("t", Int32(round % 3)): CommittedOffset(
                            offset: Int64(round),
                            commitTimestamp: Int64(round)
                        )
                    ]
                )
            }
            #expect(store.sizeInBytes < 20_000 + 2_000)
            expected = store.committed(group: "busy")
            #expect(expected.count == 3)
            try store.close()
        }
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/__consumer_offsets.compacting"))
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/__consumer_offsets.old"))
        let reopened = try open(folder, clean: true)
        #expect(reopened.committed(group: "busy") == expected)
        #expect(reopened.committed(group: "busy")[TopicPartition("t", 0)]?.offset == 399)
    }
}
