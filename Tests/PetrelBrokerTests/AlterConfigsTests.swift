import NIOCore
import PetrelBroker
import PetrelBrokerTestSupport
import PetrelClient
import PetrelProtocol
import PetrelTestSupport
import Testing

@Suite("AlterConfigs and IncrementalAlterConfigs")
struct AlterConfigsTests {
    private func incremental(
        _ connection: KafkaConnection,
        _ topic: String,
        _ operations: [(String, Int8, String?)],
        type: Int8 = 2,
        validateOnly: Bool = false
    ) async throws -> IncrementalAlterConfigsResponse.AlterConfigsResourceResponse {
        let request = IncrementalAlterConfigsRequest(
            resources: [
                .init(
                    resourceType: type,
                    resourceName: topic,
                    configs: operations.map { .init(name: $0.0, configOperation: $0.1, value: $0.2) }
                )
            ],
            validateOnly: validateOnly
        )
        return try await connection.send(request).responses[0]
    }

    private func configs(_ connection: KafkaConnection, _ topic: String) async throws -> [String: (String?, Int8)] {
        let request = DescribeConfigsRequest(
            resources: [.init(resourceType: 2, resourceName: topic, configurationKeys: nil)],
            includeSynonyms: false,
            includeDocumentation: false
        )
        let result = try await connection.send(request).results[0]
        return Dictionary(uniqueKeysWithValues: result.configs.map { ($0.name, ($0.value, $0.configSource)) })
    }

    @Test("SET, APPEND, SUBTRACT and DELETE change the described configs; DELETE goes back to the default")
    func incrementalOperations() async throws {
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "orders")
                let set = try await incremental(
                    connection,
                    "orders",
                    [("retention.ms", 0, "3600000"), ("leader.replication.throttled.replicas", 2, "0:1")]
                )
                #expect(set.errorCode == ErrorCode.none)
                var described = try await configs(connection, "orders")
                #expect(described["retention.ms"]?.0 == "3600000" && described["retention.ms"]?.1 == 1)
                #expect(described["leader.replication.throttled.replicas"]?.0 == "0:1")
                _ = try await incremental(connection, "orders", [("leader.replication.throttled.replicas", 2, "1:1")])
                _ = try await incremental(connection, "orders", [("leader.replication.throttled.replicas", 3, "0:1")])
                described = try await configs(connection, "orders")
                #expect(described["leader.replication.throttled.replicas"]?.0 == "1:1")
                _ = try await incremental(connection, "orders", [("retention.ms", 1, nil)])
                described = try await configs(connection, "orders")
                #expect(described["retention.ms"]?.0 == "604800000" && described["retention.ms"]?.1 == 4)
            }
        }
    }

    @Test("refusals: a bad value, an unknown name, APPEND on a non-list, validate-only, unknown topic, the broker")
    func refusals() async throws {
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "orders")
                let bad = try await incremental(connection, "orders", [("segment.bytes", 0, "1")])
                #expect(bad.errorCode == ErrorCode.invalidConfig && bad.errorMessage?.contains("segment.bytes") == true)
                let unknown = try await incremental(connection, "orders", [("segment.bites", 0, "1")])
                #expect(unknown.errorCode == ErrorCode.invalidConfig)
                let append = try await incremental(connection, "orders", [("retention.ms", 2, "5")])
                #expect(append.errorCode == ErrorCode.invalidConfig)
                let twice = try await incremental(
                    connection,
                    "orders",
                    [("retention.ms", 0, "5"), ("retention.ms", 1, nil)]
                )
                #expect(twice.errorCode == ErrorCode.invalidRequest)
                let checked = try await incremental(
                    connection,
                    "orders",
                    [("retention.ms", 0, "5")],
                    validateOnly: true
                )
                #expect(checked.errorCode == ErrorCode.none)
                #expect(
                    try await configs(connection, "orders")["retention.ms"]?.1 == 4,
                    "validate-only changed nothing"
                )
                let missing = try await incremental(connection, "nowhere", [("retention.ms", 0, "5")])
                #expect(missing.errorCode == ErrorCode.unknownTopicOrPartition)
                let broker = try await incremental(connection, "1", [("log.retention.ms", 0, "5")], type: 4)
                #expect(broker.errorCode == ErrorCode.invalidRequest)
            }
        }
    }

    @Test("AlterConfigs replaces the whole set, and the change survives a restart")
    func replaceAndRestart() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        try await withBroker(dataDirectory: folder.path) { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "orders")
                _ = try await incremental(connection, "orders", [("retention.ms", 0, "3600000")])
                let request = AlterConfigsRequest(
                    resources: [
                        .init(
                            resourceType: 2,
                            resourceName: "orders",
                            configs: [.init(name: "segment.ms", value: "60000")]
                        )
                    ],
                    validateOnly: false
                )
                #expect(try await connection.send(request).responses[0].errorCode == ErrorCode.none)
            }
        }
        try await withBroker(dataDirectory: folder.path) { _, port in
            try await withConnection(port) { connection in
                let described = try await configs(connection, "orders")
                #expect(described["segment.ms"]?.0 == "60000" && described["segment.ms"]?.1 == 1)
                #expect(described["retention.ms"]?.1 == 4, "not named in AlterConfigs: back to the default")
            }
        }
    }

    @Test("a lowered retention.ms on a live topic deletes its old data at the next retention check")
    func liveRetention() async throws {
        try await withBroker(configure: { $0.retentionCheckIntervalMs = 100 }) { _, port in
            try await withConnection(port) { connection in
                let create = CreateTopicsRequest(
                    topics: [
                        .init(
                            name: "kept",
                            numPartitions: 1,
                            replicationFactor: 1,
                            configs: [.init(name: "retention.ms", value: "-1")]
                        )
                    ],
                    timeoutMs: 5000
                )
                _ = try await connection.send(create)
                // Records stamped in 2023: old enough for any retention short of forever.
                _ = try await produce(connection, "kept", ["a", "b", "c"])
                try await Task.sleep(for: .milliseconds(300))
                #expect(try await earliest(connection, "kept") == 0, "kept forever so far")
                _ = try await incremental(connection, "kept", [("retention.ms", 0, "86400000")])
                var start: Int64 = 0
                for _ in 0..<100 where start == 0 {
                    try await Task.sleep(for: .milliseconds(50))
                    start = try await earliest(connection, "kept")
                }
                #expect(start == 3)
            }
        }
    }

    private func earliest(_ connection: KafkaConnection, _ topic: String) async throws -> Int64 {
        let request = ListOffsetsRequest(
            replicaId: -1,
            topics: [.init(name: topic, partitions: [.init(partitionIndex: 0, timestamp: -2)])]
        )
        return try await connection.send(request).topics[0].partitions[0].offset
    }
}
