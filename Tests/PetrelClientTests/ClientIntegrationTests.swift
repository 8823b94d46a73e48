import Foundation
import NIOCore
import PetrelClient
import PetrelProtocol
import Testing

/// The client against a real broker: Petrel in-process, or an external one (tansu) when the test
/// script names it. Each test uses topics of its own.
@Suite("Client against a broker (Petrel, or the one PETREL_CLIENT_TEST_BOOTSTRAP names)", .serialized)
struct ClientIntegrationTests {
    @Test("produce (keys, null keys, headers, gzip) and read back from chosen partitions")
    func produceAndRead() async throws {
        try await TestCluster.with { bootstrap in
            let topic = TestCluster.uniqueTopic("client-produce")
            let admin = KafkaAdmin(bootstrap: [bootstrap])
            try await admin.createTopic(topic, partitions: 3, replicationFactor: 1)
            var producerConfiguration = TestCluster.producerConfiguration(bootstrap)
            producerConfiguration.compression = .gzip
            let stored = try await KafkaProducer.withProducer(producerConfiguration) { producer in
                var stored: [RecordMetadata] = []
                for index in 0..<30 {
                    let key = index % 5 == 0 ? nil : ByteBuffer(string: "customer-\(index % 4)")
                    stored.append(
                        try await producer.sendAndWait(
                            ProducerRecord(
                                topic: topic,
                                key: key,
                                value: ByteBuffer(string: "order \(index)"),
                                headers: [
                                    RecordHeader(key: "event", value: ByteBuffer(string: "created")),
                                    RecordHeader(key: "none", value: nil),
                                ]
                            )
                        )
                    )
                }
                return stored
            }
            // Keyed records land where the Java partitioner puts them.
            for (index, metadata) in stored.enumerated() where index % 5 != 0 {
                #expect(
                    metadata.partition
                        == Partitioner.partition(forKey: ByteBuffer(string: "customer-\(index % 4)"), partitionCount: 3)
                )
            }
            let starts = Dictionary(
                uniqueKeysWithValues: (0..<Int32(3)).map {
                    (TopicPartition(topic, $0), KafkaConsumerConfiguration.StartOffset.beginning)
                }
            )
            let records = try await KafkaConsumer.withConsumer(
                TestCluster.consumerConfiguration(bootstrap, .partitions(starts))
            ) { consumer in
                try await read(30, from: consumer)
            }
            #expect(Set(records.map { $0.valueString! }) == Set((0..<30).map { "order \($0)" }))
            for record in records {
                let index = Int(record.valueString!.split(separator: " ")[1])!
                #expect(record.keyString == (index % 5 == 0 ? nil : "customer-\(index % 4)"))
                #expect(
                    record.headers == [
                        RecordHeader(key: "event", value: ByteBuffer(string: "created")),
                        RecordHeader(key: "none", value: nil),
                    ]
                )
                #expect(stored[index].partition == record.partition && stored[index].offset == record.offset)
            }
            for partition in 0..<Int32(3) {
                let offsets = records.filter { $0.partition == partition }.map(\.offset)
                #expect(offsets == Array(0..<Int64(offsets.count)), "partition \(partition)")
            }
            try await admin.deleteTopic(topic)
            await admin.close()
        }
    }

    @Test("two members of a group share the partitions, rebalance when one joins, and read everything once")
    func groupRebalance() async throws {
        try await TestCluster.with { bootstrap in
            let topic = TestCluster.uniqueTopic("client-group")
            let group = TestCluster.uniqueTopic("workers")
            let admin = KafkaAdmin(bootstrap: [bootstrap])
            try await admin.createTopic(topic, partitions: 4, replicationFactor: 1)
            try await KafkaProducer.withProducer(TestCluster.producerConfiguration(bootstrap)) { producer in
                for index in 0..<200 {
                    try await producer.send(ProducerRecord(topic: topic, key: "k\(index)", value: "first \(index)"))
                }
                await producer.flush()
            }
            let configuration = TestCluster.consumerConfiguration(bootstrap, .group(id: group, topics: [topic]))
            let first = KafkaConsumer(configuration: configuration)
            let second = KafkaConsumer(configuration: configuration)
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await first.run() }
                let early = try await read(200, from: first)
                #expect(Set(early.map { $0.valueString! }).count == 200)
                #expect(first.assignment.count == 4)
                try await first.commit()

                tasks.addTask { try await second.run() }
                // The newcomer makes the group rebalance: wait until both hold partitions.
                for _ in 0..<300 where !(first.assignment.count == 2 && second.assignment.count == 2) {
                    try await Task.sleep(for: .milliseconds(50))
                }
                #expect(first.assignment.count == 2 && second.assignment.count == 2)
                #expect(Set(first.assignment).isDisjoint(with: second.assignment))

                try await KafkaProducer.withProducer(TestCluster.producerConfiguration(bootstrap)) { producer in
                    for index in 0..<200 {
                        try await producer.send(
                            ProducerRecord(topic: topic, key: "k\(index)", value: "second \(index)")
                        )
                    }
                    await producer.flush()
                }
                let shares = [first: Set(first.assignment), second: Set(second.assignment)]
                let seen = try await readTogether(200, from: [first, second])
                #expect(seen.count == 200)
                #expect(Set(seen.map { $0.1.valueString! }) == Set((0..<200).map { "second \($0)" }))
                // Each record came from the member that owns its partition.
                #expect(seen.allSatisfy { consumer, record in shares[consumer]!.contains(record.topicPartition) })
                first.stop()
                second.stop()
                try await tasks.waitForAll()
            }
            try await admin.deleteTopic(topic)
            await admin.close()
        }
    }

    @Test("a member that commits and leaves is resumed by the next exactly after the commit")
    func commitAndResume() async throws {
        try await TestCluster.with { bootstrap in
            let topic = TestCluster.uniqueTopic("client-resume")
            let group = TestCluster.uniqueTopic("resumers")
            try await KafkaProducer.withProducer(TestCluster.producerConfiguration(bootstrap)) { producer in
                for index in 0..<100 {
                    _ = try await producer.sendAndWait(
                        ProducerRecord(topic: topic, partition: 0, value: ByteBuffer(string: "\(index)"))
                    )
                }
            }
            var configuration = TestCluster.consumerConfiguration(bootstrap, .group(id: group, topics: [topic]))
            configuration.autoCommit = false
            let firstHalf = try await KafkaConsumer.withConsumer(configuration) { consumer in
                let records = try await read(40, from: consumer)
                try await consumer.commit()
                return records
            }
            #expect(firstHalf.map(\.offset) == Array(0..<40))
            let rest = try await KafkaConsumer.withConsumer(configuration) { consumer in
                try await read(60, from: consumer)
            }
            #expect(rest.map(\.offset) == Array(40..<100), "no gap, no re-delivery")
            let admin = KafkaAdmin(bootstrap: [bootstrap])
            #expect(try await admin.committedOffsets(group: group) == [TopicPartition(topic, 0): 40])
            await admin.close()
        }
    }

    @Test("seek by timestamp, to the beginning and to an offset")
    func seeking() async throws {
        try await TestCluster.with { bootstrap in
            let topic = TestCluster.uniqueTopic("client-seek")
            try await KafkaProducer.withProducer(TestCluster.producerConfiguration(bootstrap)) { producer in
                for index in 0..<10 {
                    var record = ProducerRecord(topic: topic, partition: 0, value: ByteBuffer(string: "\(index)"))
                    record.timestamp = 1_700_000_000_000 + Int64(index) * 1_000
                    _ = try await producer.sendAndWait(record)
                }
            }
            let partition = TopicPartition(topic, 0)
            try await KafkaConsumer.withConsumer(
                TestCluster.consumerConfiguration(bootstrap, .partitions([partition: .offset(8)]))
            ) { consumer in
                #expect(try await read(2, from: consumer).map(\.offset) == [8, 9])
                try await consumer.seek(partition, to: .beginning)
                #expect(try await read(1, from: consumer).map(\.offset) == [0])
                if TestCluster.isTansu {
                    print(
                        "tansu lacks offsets by timestamp (it answers 0 for every time); skipping the timestamp seek against it"
                    )
                } else {
                    try await consumer.seek(partition, to: .timestamp(1_700_000_006_500))
                    #expect(try await read(1, from: consumer).map(\.offset) == [7])
                }
                try await consumer.seek(partition, to: .offset(3))
                #expect(try await read(2, from: consumer).map(\.offset) == [3, 4])
            }
            if !TestCluster.isTansu {
                let admin = KafkaAdmin(bootstrap: [bootstrap])
                #expect(
                    try await admin.offsets(forTimestamp: 1_700_000_004_000, partitions: [partition]) == [partition: 4]
                )
                #expect(
                    try await admin.offsets(forTimestamp: 1_800_000_000_000, partitions: [partition]) == [
                        partition: nil
                    ]
                )
                await admin.close()
            }
        }
    }

    @Test("the position follows the reader and reaches the end offset once a partition is read to its end")
    func readToEndOffset() async throws {
        try await TestCluster.with { bootstrap in
            let topic = TestCluster.uniqueTopic("client-position")
            try await KafkaProducer.withProducer(TestCluster.producerConfiguration(bootstrap)) { producer in
                for index in 0..<25 {
                    try await producer.send(
                        ProducerRecord(topic: topic, partition: 0, value: ByteBuffer(string: "\(index)"))
                    )
                }
                await producer.flush()
            }
            let partition = TopicPartition(topic, 0)
            let admin = KafkaAdmin(bootstrap: [bootstrap])
            let end = try await admin.endOffsets([partition])[partition]
            await admin.close()
            // tansu 0.6 answers ListOffsets(latest) with its last batch's base offset + 1, not the log end
            // (docs/performance.md, Transactions): the end is checked on Petrel only.
            if !TestCluster.isTansu { #expect(end == 25) }
            try await KafkaConsumer.withConsumer(
                TestCluster.consumerConfiguration(bootstrap, .partitions([partition: .offset(5)]))
            ) { consumer in
                var offsets: [Int64] = []
                let deadline = ContinuousClock.now + .seconds(30)
                while (consumer.position(of: partition) ?? -1) < 25 && ContinuousClock.now < deadline {
                    guard let record = try await consumer.nextRecord(timeout: .milliseconds(100)) else { continue }
                    offsets.append(record.offset)
                    #expect((consumer.position(of: partition) ?? -1) > record.offset)
                }
                #expect(offsets == Array(5..<25))
                #expect(consumer.position(of: partition) == 25)
                #expect(consumer.position(of: TopicPartition(topic, 1)) == nil, "not assigned")
            }
        }
    }

    @Test("admin: topics, groups, committed offsets and lag")
    func admin() async throws {
        try await TestCluster.with { bootstrap in
            let topic = TestCluster.uniqueTopic("client-admin")
            let group = TestCluster.uniqueTopic("lagging")
            let admin = KafkaAdmin(bootstrap: [bootstrap])
            try await admin.createTopic(topic, partitions: 2, replicationFactor: 1)
            do {
                try await admin.createTopic(topic, partitions: 2, replicationFactor: 1)
                Issue.record("creating an existing topic succeeded")
            } catch let error as KafkaClientError {
                #expect(error.errorCode == .topicAlreadyExists)
            }
            #expect(try await admin.describeTopic(topic).partitionCount == 2)
            #expect(try await admin.listTopics().map(\.name).contains(topic))

            try await KafkaProducer.withProducer(TestCluster.producerConfiguration(bootstrap)) { producer in
                for index in 0..<10 {
                    _ = try await producer.sendAndWait(
                        ProducerRecord(topic: topic, partition: Int32(index % 2), value: ByteBuffer(string: "\(index)"))
                    )
                }
            }
            var configuration = TestCluster.consumerConfiguration(bootstrap, .group(id: group, topics: [topic]))
            configuration.autoCommit = false
            try await KafkaConsumer.withConsumer(configuration) { consumer in
                let records = try await read(10, from: consumer)
                try await consumer.commit([TopicPartition(topic, 0): 2, TopicPartition(topic, 1): 5])
                #expect(records.count == 10)
            }
            let partitions = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
            #expect(try await admin.endOffsets(partitions) == [partitions[0]: 5, partitions[1]: 5])
            #expect(try await admin.committedOffsets(group: group) == [partitions[0]: 2, partitions[1]: 5])
            let lag = try await admin.lag(group: group)
            #expect(lag.map(\.lag) == [3, 0])
            #expect(try await admin.listGroups().map(\.groupID).contains(group))
            try await admin.deleteTopic(topic)
            #expect(try await !admin.listTopics().map(\.name).contains(topic))
            await admin.close()
        }
    }
}
