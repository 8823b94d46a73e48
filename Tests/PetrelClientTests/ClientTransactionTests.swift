import Foundation
import NIOCore
import PetrelClient
import PetrelProtocol
import Testing

/// The transactional producer and the read_committed consumer against a real broker (Petrel
/// in-process, or the external one the client test script names).
@Suite("Client transactions against a broker", .serialized)
struct ClientTransactionTests {
    private func record(_ topic: String, _ value: String, partition: Int32? = nil) -> ProducerRecord {
        ProducerRecord(topic: topic, partition: partition, key: nil, value: ByteBuffer(string: value))
    }

    @Test("committed transactions are read by read_committed consumers, aborted ones never; offsets commit with them")
    func commitAndAbort() async throws {
        try await TestCluster.with { bootstrap in
            let topic = TestCluster.uniqueTopic("client-tx")
            let admin = KafkaAdmin(bootstrap: [bootstrap])
            try await admin.createTopic(topic, partitions: 2, replicationFactor: 1)
            let group = TestCluster.uniqueTopic("tx-group")
            var configuration = TestCluster.producerConfiguration(bootstrap)
            configuration.transactionalID = TestCluster.uniqueTopic("tx-writer")
            try await KafkaProducer.withProducer(configuration) { producer in
                try await producer.initTransactions()
                try await producer.withTransaction { producer in
                    for index in 0..<10 {
                        try await producer.send(record(topic, "committed-\(index)", partition: Int32(index % 2)))
                    }
                    try await producer.sendOffsets([TopicPartition(topic, 0): 7], group: group)
                }
                struct Abandoned: Error {}
                await #expect(throws: Abandoned.self) {
                    _ = try await producer.withTransaction { producer in
                        for index in 0..<10 { try await producer.send(record(topic, "aborted-\(index)", partition: 0)) }
                        try await producer.sendOffsets([TopicPartition(topic, 0): 99], group: group)
                        await producer.flush()
                        throw Abandoned()
                    }
                }
                _ = try await producer.withTransaction { producer in
                    try await producer.send(record(topic, "committed-last", partition: 1))
                }
            }
            // The committed transaction's offsets were committed; the aborted one's were dropped.
            #expect(try await admin.committedOffsets(group: group)[TopicPartition(topic, 0)] == 7)

            let starts = Dictionary(
                uniqueKeysWithValues: (0..<Int32(2)).map {
                    (TopicPartition(topic, $0), KafkaConsumerConfiguration.StartOffset.beginning)
                }
            )
            var committedOnly = TestCluster.consumerConfiguration(bootstrap, .partitions(starts))
            committedOnly.isolationLevel = .readCommitted
            let committed = try await KafkaConsumer.withConsumer(committedOnly) { try await read(11, from: $0) }
            #expect(
                Set(committed.map { $0.valueString! }) == Set((0..<10).map { "committed-\($0)" } + ["committed-last"])
            )
            let everything = try await KafkaConsumer.withConsumer(
                TestCluster.consumerConfiguration(bootstrap, .partitions(starts))
            ) { try await read(21, from: $0) }
            #expect(everything.filter { $0.valueString!.hasPrefix("aborted") }.count == 10)
            #expect(!everything.contains { $0.valueString == nil }, "control records are never handed out")
            await admin.close()
        }
    }

    @Test("a second producer with the same transactional id fences the first")
    func fencing() async throws {
        try await TestCluster.with { bootstrap in
            let topic = TestCluster.uniqueTopic("client-fence")
            let admin = KafkaAdmin(bootstrap: [bootstrap])
            try await admin.createTopic(topic, partitions: 1, replicationFactor: 1)
            var configuration = TestCluster.producerConfiguration(bootstrap)
            configuration.transactionalID = TestCluster.uniqueTopic("fenced-writer")
            // Some brokers answer a fenced producer with retriable errors: it gives up after this.
            configuration.maxBlock = .seconds(5)
            try await KafkaProducer.withProducer(configuration) { first in
                try await first.initTransactions()
                try first.beginTransaction()
                _ = try await first.sendAndWait(record(topic, "first"))
                try await KafkaProducer.withProducer(configuration) { second in
                    try await second.initTransactions()
                    _ = try await second.withTransaction { try await $0.send(record(topic, "second")) }
                }
                await #expect(throws: KafkaClientError.self) { try await first.commitTransaction() }
                // Fenced for good: nothing more can be done with it.
                #expect(throws: KafkaClientError.self) { try first.beginTransaction() }
            }
            await admin.close()
        }
    }

    @Test("sends outside a transaction, and commits without one, are refused before anything is sent")
    func misuse() async throws {
        try await TestCluster.with { bootstrap in
            var configuration = TestCluster.producerConfiguration(bootstrap)
            configuration.transactionalID = TestCluster.uniqueTopic("careless-writer")
            try await KafkaProducer.withProducer(configuration) { producer in
                #expect(throws: KafkaClientError.self) { try producer.beginTransaction() }  // not initialised
                try await producer.initTransactions()
                await #expect(throws: KafkaClientError.self) {
                    try await producer.send(record(TestCluster.uniqueTopic("nowhere"), "outside"))
                }
                await #expect(throws: KafkaClientError.self) { try await producer.commitTransaction() }
            }
        }
    }
}
