import Foundation
import NIOCore
import NIOPosix
import PetrelBroker
import PetrelBrokerTestSupport
import PetrelClient
import PetrelProtocol
import PetrelTestSupport
import Testing

@Suite("Metrics endpoint")
struct MetricsTests {
    func withMetricsBroker<Result: Sendable>(
        _ body: @Sendable (_ broker: Broker, _ port: Int, _ metricsPort: Int) async throws -> Result
    ) async throws -> Result {
        try await withBroker(configure: { $0.metricsEndpoint = MetricsEndpointConfiguration(port: 0) }) {
            broker,
            port in
            let metricsPort = try await broker.metricsAddress().port!
            return try await body(broker, port, metricsPort)
        }
    }

    @Test("/metrics reports requests by API, failures by error code, traffic, partitions and connections")
    func trafficAndRED() async throws {
        try await withMetricsBroker { _, port, metricsPort in
            try await withConnection(port) { connection in
                try await createTopic(connection, "orders", partitions: 2)
                for _ in 0..<3 {
                    #expect(try await produce(connection, "orders", ["a", "b", "c", "d"]).errorCode == ErrorCode.none)
                }
                #expect(
                    try await produce(connection, "orders", partition: 7, ["lost"]).errorCode
                        == ErrorCode.unknownTopicOrPartition
                )
                let fetched = try await connection.send(fetchRequest("orders", offset: 0), version: 12)
                #expect(try values(in: fetched).count == 12)

                let (status, text) = try await httpGet(port: metricsPort, path: "/metrics")
                #expect(status == 200)
                #expect(sampleValue(text, #"petrel_requests_total{api="Produce"}"#) == 4)
                #expect(sampleValue(text, #"petrel_requests_total{api="CreateTopics"}"#) == 1)
                #expect(
                    sampleValue(text, #"petrel_request_errors_total{api="Produce",error="UNKNOWN_TOPIC_OR_PARTITION"}"#)
                        == 1
                )
                #expect(sampleValue(text, #"petrel_request_duration_seconds_count{api="Fetch"}"#) == 1)
                #expect(sampleValue(text, "petrel_produced_records_total") == 12)
                #expect(sampleValue(text, "petrel_fetched_records_total") == 12)
                #expect((sampleValue(text, "petrel_received_bytes_total") ?? 0) > 12)
                #expect((sampleValue(text, "petrel_sent_bytes_total") ?? 0) > 12)
                #expect(sampleValue(text, "petrel_connections") == 1)
                #expect(sampleValue(text, #"petrel_log_end_offset{topic="orders",partition="0"}"#) == 12)
                #expect(sampleValue(text, #"petrel_log_end_offset{topic="orders",partition="1"}"#) == 0)
                #expect(sampleValue(text, #"petrel_log_start_offset{topic="orders",partition="0"}"#) == 0)
                #expect((sampleValue(text, #"petrel_log_size_bytes{topic="orders",partition="0"}"#) ?? 0) > 0)
            }
        }
    }

    @Test(
        "lag per group and partition, for a group without members, current right after a commit and gone with the group"
    )
    func consumerLag() async throws {
        try await withMetricsBroker { broker, port, metricsPort in
            try await withConnection(port) { connection in
                try await createTopic(connection, "orders", partitions: 2)
                _ = try await produce(connection, "orders", partition: 0, (0..<10).map { "o\($0)" })
                _ = try await produce(connection, "orders", partition: 1, (0..<5).map { "p\($0)" })
                let commit = OffsetCommitRequest(
                    groupId: "billing",
                    generationIdOrMemberEpoch: -1,
                    memberId: "",
                    topics: [
                        .init(
                            name: "orders",
                            partitions: [
                                .init(partitionIndex: 0, committedOffset: 4),
                                .init(partitionIndex: 1, committedOffset: 5),
                            ]
                        )
                    ]
                )
                #expect(
                    try await connection.send(commit, version: 8).topics.flatMap(\.partitions).map(\.errorCode) == [
                        .none, .none,
                    ]
                )

                let text = try await httpGet(port: metricsPort, path: "/metrics").body
                #expect(
                    sampleValue(text, #"petrel_consumer_group_lag{group="billing",topic="orders",partition="0"}"#) == 6
                )
                #expect(
                    sampleValue(text, #"petrel_consumer_group_lag{group="billing",topic="orders",partition="1"}"#) == 0
                )
                #expect(
                    sampleValue(
                        text,
                        #"petrel_consumer_group_committed_offset{group="billing",topic="orders",partition="0"}"#
                    ) == 4
                )

                // More records raise the lag without any new commit.
                _ = try await produce(connection, "orders", partition: 1, ["p5", "p6"])
                #expect(
                    sampleValue(
                        broker.renderMetrics(),
                        #"petrel_consumer_group_lag{group="billing",topic="orders",partition="1"}"#
                    ) == 2
                )

                let deleted = try await connection.send(DeleteGroupsRequest(groupsNames: ["billing"]), version: 2)
                #expect(deleted.results.map(\.errorCode) == [.none])
                #expect(!broker.renderMetrics().contains(#"group="billing""#))
            }
        }
    }

    @Test("state gauges escape label values and keep each family under one TYPE line, as Prometheus requires")
    func stateGaugeExposition() async throws {
        try await withMetricsBroker { broker, port, _ in
            try await withConnection(port) { connection in
                try await createTopic(connection, "orders", partitions: 3)
                try await createTopic(connection, "refunds", partitions: 2)
                let group = #"team "a"\b"#
                let commit = OffsetCommitRequest(
                    groupId: group,
                    generationIdOrMemberEpoch: -1,
                    memberId: "",
                    topics: [.init(name: "orders", partitions: [.init(partitionIndex: 2, committedOffset: 0)])]
                )
                #expect(try await connection.send(commit, version: 8).topics[0].partitions[0].errorCode == .none)
            }
            let text = broker.renderMetrics()
            #expect(
                sampleValue(text, #"petrel_consumer_group_lag{group="team \"a\"\\b",topic="orders",partition="2"}"#)
                    == 0
            )
            // Every sample line of a family follows its TYPE line, before the next family begins.
            var declared: [String] = []
            var current = ""
            for line in text.split(separator: "\n") {
                if line.hasPrefix("# TYPE ") {
                    current = String(line.split(separator: " ")[2])
                    #expect(!declared.contains(current), "\(current) declared twice")
                    declared.append(current)
                } else if !line.hasPrefix("#") {
                    let name = line.prefix { $0 != "{" && $0 != " " }
                    #expect(name == current || name.hasPrefix(current + "_"), "\(line) outside its family")
                }
            }
            #expect(declared.contains("petrel_log_end_offset"))
            let ends = text.split(separator: "\n").filter { $0.hasPrefix("petrel_log_end_offset{") }
            #expect(ends.filter { !$0.contains("__consumer_offsets") }.count == 5)
        }
    }

    @Test("/health answers while the process runs, /ready once listening; unknown paths are 404")
    func healthAndReadiness() async throws {
        try await withMetricsBroker { broker, _, metricsPort in
            #expect(broker.isReady)
            let health = try await httpGet(port: metricsPort, path: "/health")
            #expect(health.status == 200)
            #expect(try await httpGet(port: metricsPort, path: "/ready").status == 200)
            #expect(try await httpGet(port: metricsPort, path: "/nope").status == 404)
        }
    }

    @Test("config changes and log-start moves are counted")
    func adminCounters() async throws {
        try await withMetricsBroker { broker, port, _ in
            try await withConnection(port) { connection in
                try await createTopic(connection, "trimmed")
                _ = try await produce(connection, "trimmed", ["a", "b", "c"])
                let delete = DeleteRecordsRequest(
                    topics: [.init(name: "trimmed", partitions: [.init(partitionIndex: 0, offset: 2)])],
                    timeoutMs: 5000
                )
                #expect(try await connection.send(delete).topics[0].partitions[0].lowWatermark == 2)
                let alter = IncrementalAlterConfigsRequest(
                    resources: [
                        .init(
                            resourceType: 2,
                            resourceName: "trimmed",
                            configs: [.init(name: "retention.ms", configOperation: 0, value: "60000")]
                        )
                    ],
                    validateOnly: false
                )
                #expect(try await connection.send(alter).responses[0].errorCode == ErrorCode.none)
            }
            let text = broker.renderMetrics()
            #expect(sampleValue(text, #"petrel_log_start_moves_total{cause="delete_records"}"#) == 1)
            #expect(sampleValue(text, "petrel_config_changes_total") == 1)
        }
    }

    @Test("a busy metrics port: optional endpoints are skipped and the broker runs; required ones fail the start")
    func busyPort() async throws {
        let blocker = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(
            host: "127.0.0.1",
            port: 0
        ).get()
        defer { blocker.close(promise: nil) }
        let busy = blocker.localAddress!.port!
        try await withBroker(configure: {
            $0.metricsEndpoint = MetricsEndpointConfiguration(port: busy, required: false)
        }) {
            broker,
            port in
            await #expect(throws: MetricsEndpointUnavailable.self) { try await broker.metricsAddress() }
            try await withConnection(port) { connection in
                try await createTopic(connection, "still-serving")
            }
        }
        let data = try TemporaryDirectory()
        defer { data.remove() }
        var configuration = BrokerConfiguration()
        configuration.port = 0
        configuration.dataDirectory = data.path
        configuration.metricsEndpoint = MetricsEndpointConfiguration(port: busy, required: true)
        let broker = try Broker(configuration: configuration)
        await #expect(throws: MetricsEndpointUnavailable.self) { try await broker.run() }
    }
}
