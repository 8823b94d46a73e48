import NIOCore
import PetrelBroker
import PetrelBrokerTestSupport
import PetrelClient
import PetrelProtocol
import PetrelTestSupport
import Testing

@Suite("DescribeConfigs and topic configs over the wire")
struct DescribeConfigsTests {
    private typealias Result = DescribeConfigsResponse.DescribeConfigsResult

    private func describe(
        _ connection: KafkaConnection,
        _ resources: [(Int8, String, [String]?)],
        version: Int16 = 4,
        synonyms: Bool = false
    ) async throws -> [Result] {
        let request = DescribeConfigsRequest(
            resources: resources.map { .init(resourceType: $0.0, resourceName: $0.1, configurationKeys: $0.2) },
            includeSynonyms: synonyms,
            includeDocumentation: true
        )
        return try await connection.send(request, version: version).results
    }

    @Test("a topic's configs: overrides from the topic, the rest from broker settings or Kafka's defaults")
    func topic() async throws {
        try await withBroker(configure: { $0.log.retentionMs = 7_200_000 }) { _, port in
            try await withConnection(port) { connection in
                let create = CreateTopicsRequest(
                    topics: [
                        .init(
                            name: "orders",
                            numPartitions: 1,
                            replicationFactor: 1,
                            configs: [
                                .init(name: "segment.bytes", value: "65536"), .init(name: "preallocate", value: "true"),
                            ]
                        )
                    ],
                    timeoutMs: 5000
                )
                #expect(try await connection.send(create).topics[0].errorCode == ErrorCode.none)
                let results = try await describe(connection, [(2, "orders", nil), (2, "nowhere", nil), (9, "x", nil)])
                let configs = Dictionary(uniqueKeysWithValues: results[0].configs.map { ($0.name, $0) })
                #expect(configs["segment.bytes"]?.value == "65536" && configs["segment.bytes"]?.configSource == 1)
                #expect(configs["preallocate"]?.value == "true" && configs["preallocate"]?.configSource == 1)
                #expect(configs["retention.ms"]?.value == "7200000" && configs["retention.ms"]?.configSource == 4)
                #expect(configs["file.delete.delay.ms"]?.configSource == 5)
                #expect(
                    configs["retention.ms"]?.configType == 5 && configs["retention.ms"]?.documentation?.isEmpty == false
                )
                #expect(results[1].errorCode == ErrorCode.unknownTopicOrPartition && results[1].configs.isEmpty)
                #expect(results[2].errorCode == ErrorCode.invalidRequest)
            }
        }
    }

    @Test("named keys only, synonyms when asked, and the v0 form")
    func filtersAndVersions() async throws {
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "orders")
                let keys = try await describe(
                    connection,
                    [(2, "orders", ["retention.ms", "no.such.config"])],
                    synonyms: true
                )
                #expect(keys[0].configs.map(\.name) == ["retention.ms"])
                #expect(keys[0].configs[0].synonyms.map(\.name) == ["log.retention.ms"])
                let v0 = try await describe(
                    connection,
                    [(2, "orders", ["retention.ms", "file.delete.delay.ms"])],
                    version: 0
                )
                let byName = Dictionary(uniqueKeysWithValues: v0[0].configs.map { ($0.name, $0) })
                #expect(byName["retention.ms"]?.value == "604800000" && byName["retention.ms"]?.isDefault == false)
                #expect(byName["file.delete.delay.ms"]?.isDefault == true, "v0 has is_default instead of a source")
            }
        }
    }

    @Test("the broker resource: settings under Kafka names, read-only; another broker's id is refused")
    func brokerResource() async throws {
        try await withBroker(configure: { $0.defaultPartitions = 3 }) { _, port in
            try await withConnection(port) { connection in
                let results = try await describe(
                    connection,
                    [(4, "1", nil), (4, "", ["num.partitions"]), (4, "7", nil)]
                )
                let configs = Dictionary(uniqueKeysWithValues: results[0].configs.map { ($0.name, $0) })
                #expect(configs["num.partitions"]?.value == "3" && configs["num.partitions"]?.readOnly == true)
                #expect(configs["listeners"]?.value == "PLAINTEXT://127.0.0.1:0")
                #expect(results[1].configs.map(\.value) == ["3"])
                #expect(results[2].errorCode == ErrorCode.invalidRequest)
            }
        }
    }

    @Test("min.insync.replicas above 1: acks=all gets NOT_ENOUGH_REPLICAS and writes nothing; acks=1 is stored")
    func minInsyncReplicas() async throws {
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                let create = CreateTopicsRequest(
                    topics: [
                        .init(
                            name: "strict",
                            numPartitions: 1,
                            replicationFactor: 1,
                            configs: [.init(name: "min.insync.replicas", value: "2")]
                        )
                    ],
                    timeoutMs: 5000
                )
                #expect(try await connection.send(create).topics[0].errorCode == ErrorCode.none)
                let refused = try await connection.send(produceRequest("strict", records: try batch(["a"]), acks: -1))
                #expect(refused.responses[0].partitionResponses[0].errorCode == ErrorCode.notEnoughReplicas)
                let stored = try await connection.send(produceRequest("strict", records: try batch(["b"]), acks: 1))
                #expect(stored.responses[0].partitionResponses[0].errorCode == ErrorCode.none)
                #expect(stored.responses[0].partitionResponses[0].baseOffset == 0, "the refused batch left no trace")
            }
        }
    }
}
