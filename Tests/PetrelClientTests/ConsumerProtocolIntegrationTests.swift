import NIOCore
import PetrelClient
import PetrelProtocol
import Testing

/// The consumer group protocol (KIP-848, `groupProtocol = .consumer`) against an in-process Petrel
/// broker. Not run against tansu, which does not serve ConsumerGroupHeartbeat: this suite always starts
/// its own broker.
@Suite("Consumer protocol (KIP-848) against Petrel", .serialized)
struct ConsumerProtocolIntegrationTests {
    private static func withBroker<Result: Sendable>(
        _ body: @Sendable (BrokerAddress) async throws -> Result
    ) async throws -> Result {
        try await TestCluster.withInProcessBroker(
            configure: { $0.groups.consumerHeartbeatIntervalMs = 200 },
            body
        )
    }

    private static func configuration(
        _ bootstrap: BrokerAddress,
        group: String,
        topic: String
    ) -> KafkaConsumerConfiguration {
        var configuration = TestCluster.consumerConfiguration(bootstrap, .group(id: group, topics: [topic]))
        configuration.groupProtocol = .consumer
        return configuration
    }

    private static func produce(_ values: [String], to topic: String, bootstrap: BrokerAddress) async throws {
        try await KafkaProducer.withProducer(TestCluster.producerConfiguration(bootstrap)) { producer in
            for (index, value) in values.enumerated() {
                try await producer.send(ProducerRecord(topic: topic, key: "k\(index)", value: value))
            }
            await producer.flush()
        }
    }

    /// Waits (up to 15 s) until `condition` holds; returns whether it did.
    private static func eventually(_ condition: () -> Bool) async throws -> Bool {
        for _ in 0..<300 {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return condition()
    }

    private static func events(of consumer: KafkaConsumer) async -> [KafkaConsumerEvent] {
        var events: [KafkaConsumerEvent] = []
        for await event in consumer.events { events.append(event) }
        return events
    }

    @Test(
        "two members share four partitions incrementally, read every record once, and one takes over from the commits"
    )
    func shareAndTakeOver() async throws {
        try await Self.withBroker { bootstrap in
            let topic = TestCluster.uniqueTopic("kip848")
            let group = TestCluster.uniqueTopic("kip848-workers")
            let admin = KafkaAdmin(bootstrap: [bootstrap])
            try await admin.createTopic(topic, partitions: 4, replicationFactor: 1)
            let first = KafkaConsumer(configuration: Self.configuration(bootstrap, group: group, topic: topic))
            let second = KafkaConsumer(configuration: Self.configuration(bootstrap, group: group, topic: topic))
            let everything = (0..<200).map { "first \($0)" }
            try await Self.produce(everything, to: topic, bootstrap: bootstrap)

            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await first.run() }
                let early = try await read(100, from: first)
                #expect(first.assignment.count == 4, "alone in the group, the first member gets every partition")

                // The newcomer takes two partitions from the first, which gives up exactly those (after
                // committing what it read of them) and keeps reading the other two.
                tasks.addTask { try await second.run() }
                #expect(try await Self.eventually { first.assignment.count == 2 && second.assignment.count == 2 })
                #expect(Set(first.assignment).isDisjoint(with: second.assignment))
                let rest = try await readTogether(100, from: [first, second])
                let values = early.map { $0.valueString! } + rest.map { $0.1.valueString! }
                #expect(values.count == 200)
                #expect(Set(values) == Set(everything), "every record read, none twice")

                // With both in place, each record comes from the member that owns its partition.
                try await first.commit()
                try await second.commit()
                let shares = [first: Set(first.assignment), second: Set(second.assignment)]
                let more = (0..<100).map { "second \($0)" }
                try await Self.produce(more, to: topic, bootstrap: bootstrap)
                let seen = try await readTogether(100, from: [first, second])
                #expect(Set(seen.map { $0.1.valueString! }) == Set(more) && seen.count == 100)
                #expect(seen.allSatisfy { consumer, record in shares[consumer]!.contains(record.topicPartition) })
                try await first.commit()

                // The second leaves (committing on its way out); the first gets all four partitions and
                // resumes the second's two where its commits say: nothing is read again.
                let secondsShare = Set(second.assignment)
                second.stop()
                #expect(try await Self.eventually { first.assignment.count == 4 })
                let committed = try await admin.committedOffsets(group: group)
                for partition in secondsShare {
                    #expect(first.position(of: partition) == committed[partition], "\(partition)")
                }
                let last = (0..<100).map { "third \($0)" }
                try await Self.produce(last, to: topic, bootstrap: bootstrap)
                let after = try await read(100, from: first)
                #expect(Set(after.map { $0.valueString! }) == Set(last))
                first.stop()
                try await tasks.waitForAll()
            }

            // Incremental: the first gave up only what the second took, and never its other partitions.
            let firstEvents = await Self.events(of: first)
            let revokedFromFirst = firstEvents.flatMap { event -> [TopicPartition] in
                if case .revoked(let partitions) = event { return partitions }
                return []
            }
            let assignedToSecond = await Self.events(of: second).flatMap { event -> [TopicPartition] in
                if case .assigned(let partitions, _) = event { return partitions }
                return []
            }
            #expect(Set(assignedToSecond).count == 2)
            #expect(revokedFromFirst.count == 2 && Set(revokedFromFirst) == Set(assignedToSecond))
            let committed = try await admin.committedOffsets(group: group)
            #expect(committed.values.reduce(0, +) == 400, "every record committed")
            // The first left too: a newcomer gets all four partitions long before the first's session
            // (45 s) would have ended, and starts at the commits, the end of each partition.
            let successor = try await KafkaConsumer.withConsumer(
                Self.configuration(bootstrap, group: group, topic: topic)
            ) { consumer in
                let complete = try await Self.eventually { consumer.assignment.count == 4 }
                return (
                    complete,
                    Dictionary(uniqueKeysWithValues: consumer.assignment.map { ($0, consumer.position(of: $0)) })
                )
            }
            #expect(successor.0)
            #expect(successor.1 == committed.mapValues { Optional($0) })
            try await admin.deleteTopic(topic)
            await admin.close()
        }
    }

    @Test("a static member that leaves keeps its partitions for its return; the other member does not get them")
    func staticMember() async throws {
        try await Self.withBroker { bootstrap in
            let topic = TestCluster.uniqueTopic("kip848-static")
            let group = TestCluster.uniqueTopic("kip848-static")
            let admin = KafkaAdmin(bootstrap: [bootstrap])
            try await admin.createTopic(topic, partitions: 4, replicationFactor: 1)
            func member(_ instance: String) -> KafkaConsumer {
                var configuration = Self.configuration(bootstrap, group: group, topic: topic)
                configuration.groupInstanceID = instance
                return KafkaConsumer(configuration: configuration)
            }
            let stayer = member("stayer")
            let leaver = member("leaver")
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await stayer.run() }
                tasks.addTask { try await leaver.run() }
                #expect(try await Self.eventually { stayer.assignment.count == 2 && leaver.assignment.count == 2 })
                let held = leaver.assignment
                leaver.stop()
                // Heartbeats come every 200 ms: a dynamic member's partitions would have moved by now.
                try await Task.sleep(for: .seconds(1))
                #expect(stayer.assignment.count == 2, "the static member's partitions wait for it")
                let returner = member("leaver")
                tasks.addTask { try await returner.run() }
                #expect(try await Self.eventually { returner.assignment == held })
                #expect(stayer.assignment.count == 2)
                stayer.stop()
                returner.stop()
                try await tasks.waitForAll()
            }
            await admin.close()
        }
    }

    @Test("a group the classic protocol holds refuses a consumer-protocol member with a clear error")
    func classicGroupRefuses() async throws {
        try await Self.withBroker { bootstrap in
            let topic = TestCluster.uniqueTopic("kip848-mixed")
            let group = TestCluster.uniqueTopic("kip848-classic")
            let admin = KafkaAdmin(bootstrap: [bootstrap])
            try await admin.createTopic(topic, partitions: 2, replicationFactor: 1)
            let classic = KafkaConsumer(
                configuration: TestCluster.consumerConfiguration(bootstrap, .group(id: group, topics: [topic]))
            )
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await classic.run() }
                #expect(try await Self.eventually { classic.assignment.count == 2 })
                let newcomer = KafkaConsumer(configuration: Self.configuration(bootstrap, group: group, topic: topic))
                await #expect {
                    try await newcomer.run()
                } throws: { error in
                    (error as? KafkaClientError)?.errorCode == .inconsistentGroupProtocol
                        && "\(error)".contains("classic protocol")
                }
                classic.stop()
                try await tasks.waitForAll()
            }
            await admin.close()
        }
    }

    @Test("an unknown server assignor fails the consumer; a known one is used")
    func serverAssignor() async throws {
        try await Self.withBroker { bootstrap in
            let topic = TestCluster.uniqueTopic("kip848-assignor")
            let admin = KafkaAdmin(bootstrap: [bootstrap])
            try await admin.createTopic(topic, partitions: 3, replicationFactor: 1)
            var unknown = Self.configuration(bootstrap, group: TestCluster.uniqueTopic("kip848-fancy"), topic: topic)
            unknown.groupRemoteAssignor = "fancy"
            await #expect {
                try await KafkaConsumer(configuration: unknown).run()
            } throws: { error in
                (error as? KafkaClientError)?.errorCode == .unsupportedAssignor
            }
            var range = Self.configuration(bootstrap, group: TestCluster.uniqueTopic("kip848-range"), topic: topic)
            range.groupRemoteAssignor = "range"
            let assignedEverything = try await KafkaConsumer.withConsumer(range) { consumer in
                try await Self.eventually { consumer.assignment.count == 3 }
            }
            #expect(assignedEverything)
            await admin.close()
        }
    }
}
