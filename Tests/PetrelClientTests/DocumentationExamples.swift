import Foundation
import NIOCore
import NIOSSL
import PetrelClient
import PetrelProtocol
import Testing

// The examples of docs/client.md, compiled and run. A test below checks that every Swift block of
// the document appears here verbatim, so the document cannot drift from code that works.

func exampleProduce(bootstrap: BrokerAddress) async throws {
    var configuration = KafkaProducerConfiguration(bootstrap: [bootstrap])
    configuration.compression = .gzip
    try await KafkaProducer.withProducer(configuration) { producer in
        // Awaitable: returns once the broker has stored the record.
        let stored = try await producer.sendAndWait(
            ProducerRecord(
                topic: "orders",
                key: "order-1",
                value: #"{"total": 30}"#,
                headers: ["event": "order-created"]
            )
        )
        print("stored at \(stored.partition)/\(stored.offset)")

        // Fire and forget: the outcome arrives on producer.deliveryReports.
        for index in 2...100 {
            try await producer.send(ProducerRecord(topic: "orders", key: "order-\(index)", value: #"{"total": 1}"#))
        }
        await producer.flush()
    }
}

func exampleConsumeInAGroup(bootstrap: BrokerAddress) async throws {
    var configuration = KafkaConsumerConfiguration(
        bootstrap: [bootstrap],
        source: .group(id: "notification-workers", topics: ["orders"])
    )
    configuration.offsetReset = .earliest
    try await KafkaConsumer.withConsumer(configuration) { consumer in
        var handled = 0
        for try await record in consumer.messages {
            print("order \(record.keyString ?? "-") from partition \(record.partition) at offset \(record.offset)")
            handled += 1
            if handled == 100 { break }
        }
        try await consumer.commit()  // auto-commit does this too, every 5 s and on close
    }
}

func exampleAdmin(bootstrap: BrokerAddress) async throws {
    let admin = KafkaAdmin(bootstrap: [bootstrap])
    try await admin.createTopic("payments", partitions: 3, configs: ["retention.ms": "86400000"])
    for topic in try await admin.listTopics() {
        print(topic.name, topic.partitionCount)
    }
    for partition in try await admin.lag(group: "notification-workers") {
        print(partition.partition, partition.committed ?? -1, partition.logEndOffset, partition.lag ?? -1)
    }
    await admin.close()
}

func exampleReadToTheEnd(bootstrap: BrokerAddress) async throws -> [String: String] {
    let partition = TopicPartition("order-status", 0)
    let admin = KafkaAdmin(bootstrap: [bootstrap])
    let end = try await admin.endOffsets([partition])[partition] ?? 0
    await admin.close()
    var table: [String: String] = [:]
    let configuration = KafkaConsumerConfiguration(bootstrap: [bootstrap], source: .partitions([partition: .beginning]))
    try await KafkaConsumer.withConsumer(configuration) { consumer in
        // The position also passes offsets that compaction emptied, up to the end.
        while (consumer.position(of: partition) ?? -1) < end {
            guard let record = try await consumer.nextRecord(timeout: .milliseconds(200)) else { continue }
            if let key = record.keyString, record.offset < end {
                table[key] = record.valueString  // a tombstone (no value) removes the key
            }
        }
    }
    return table
}

/// Compiled only: it reads until stopped (ClientTransactionTests runs the same calls).
func exampleTransactions(brokers: [BrokerAddress]) async throws {
    var producerConfiguration = KafkaProducerConfiguration(bootstrap: brokers)
    producerConfiguration.transactionalID = "notifier-1"  // stable per worker instance
    var consumerConfiguration = KafkaConsumerConfiguration(
        bootstrap: brokers,
        source: .group(id: "notifiers", topics: ["orders"])
    )
    consumerConfiguration.autoCommit = false  // offsets go with the transactions
    consumerConfiguration.isolationLevel = .readCommitted  // upstream transactions too

    try await KafkaProducer.withProducer(producerConfiguration) { producer in
        try await producer.initTransactions()  // fences an older instance, aborts its open transaction
        try await KafkaConsumer.withConsumer(consumerConfiguration) { consumer in
            for try await order in consumer.messages {
                try await producer.withTransaction { producer in
                    try await producer.send(
                        ProducerRecord(topic: "notifications", key: order.keyString, value: "notify")
                    )
                    try await producer.sendOffsets([order.topicPartition: order.offset + 1], group: "notifiers")
                }
            }
        }
    }
}

/// Compiled only: it needs a CA file and a secured broker (SecurityTests runs the same calls).
func exampleSecurity(bootstrap: BrokerAddress, password: String) throws -> (KafkaProducerConfiguration, KafkaAdmin) {
    var tls = TLSConfiguration.makeClientConfiguration()
    tls.trustRoots = .file("ca.pem")  // the authority that signed the broker's certificate
    let security = try KafkaClientSecurity(
        tls: tls,
        sasl: .init(mechanism: .scramSHA256, user: "alice", password: password)
    )

    var configuration = KafkaProducerConfiguration(bootstrap: [bootstrap])
    configuration.security = security
    let admin = KafkaAdmin(bootstrap: [bootstrap], security: security)
    return (configuration, admin)
}

@Suite("docs/client.md examples")
struct DocumentationExamplesTests {
    @Test("the examples run against a broker")
    func examplesRun() async throws {
        try await TestCluster.with { bootstrap in
            try await exampleProduce(bootstrap: bootstrap)
            try await exampleConsumeInAGroup(bootstrap: bootstrap)
            try await exampleAdmin(bootstrap: bootstrap)
            let admin = KafkaAdmin(bootstrap: [bootstrap])
            #expect(try await admin.committedOffsets(group: "notification-workers").values.reduce(0, +) == 100)
            // A compacted topic (on Petrel; tansu reads a plain one the same way) with updates and a delete.
            try await admin.createTopic(
                "order-status",
                partitions: 1,
                configs: TestCluster.isTansu ? [:] : ["cleanup.policy": "compact"]
            )
            await admin.close()
            try await KafkaProducer.withProducer(TestCluster.producerConfiguration(bootstrap)) { producer in
                for (key, value) in [("order-1", "paid"), ("order-2", "created"), ("order-1", "shipped")] {
                    _ = try await producer.sendAndWait(ProducerRecord(topic: "order-status", key: key, value: value))
                }
                _ = try await producer.sendAndWait(
                    ProducerRecord(topic: "order-status", key: ByteBuffer(string: "order-2"), value: nil)
                )
            }
            #expect(try await exampleReadToTheEnd(bootstrap: bootstrap) == ["order-1": "shipped"])
        }
    }

    @Test("every Swift block in docs/client.md is code this file compiles")
    func documentMatches() throws {
        let here = URL(fileURLWithPath: #filePath)
        let source = try String(contentsOf: here, encoding: .utf8)
        let document = try String(
            contentsOf: here.deletingLastPathComponent().appendingPathComponent("../../docs/client.md"),
            encoding: .utf8
        )
        let blocks = document.components(separatedBy: "```swift\n").dropFirst().map {
            $0.components(separatedBy: "```")[0]
        }
        #expect(blocks.count >= 3)
        for block in blocks {
            let lines = block.split(separator: "\n", omittingEmptySubsequences: true).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            let sourceLines = Set(source.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) })
            for line in lines where !line.isEmpty {
                #expect(sourceLines.contains(line), "docs/client.md line not in the compiled examples: \(line)")
            }
        }
    }
}
