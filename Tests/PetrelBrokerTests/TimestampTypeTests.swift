import NIOCore
import PetrelBroker
import PetrelBrokerTestSupport
import PetrelClient
import PetrelProtocol
import PetrelTestSupport
import Testing

@Suite("message.timestamp.type and the timestamp bounds")
struct TimestampTypeTests {
    private func create(_ connection: KafkaConnection, _ name: String, _ configs: [String: String]) async throws {
        let request = CreateTopicsRequest(
            topics: [
                .init(
                    name: name,
                    numPartitions: 1,
                    replicationFactor: 1,
                    configs: configs.map { .init(name: $0.key, value: $0.value) }
                )
            ],
            timeoutMs: 5000
        )
        #expect(try await connection.send(request).topics[0].errorCode == ErrorCode.none)
    }

    @Test("LogAppendTime: the broker stamps batches; fetch, the produce answer and ListOffsets all use that time")
    func logAppendTime() async throws {
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                try await create(connection, "stamped", ["message.timestamp.type": "LogAppendTime"])
                let before = wallClockMillis()
                let answer = try await produce(connection, "stamped", ["old", "older"])  // stamped 2023 by the client
                let after = wallClockMillis()
                #expect(answer.errorCode == ErrorCode.none)
                #expect((before...after).contains(answer.logAppendTimeMs))
                let fetched = try await connection.send(fetchRequest("stamped", offset: 0))
                let batches = try RecordBatchDecoder.decodeBatches(
                    fetched.responses[0].partitions[0].records ?? ByteBuffer()
                )
                #expect(batches.count == 1 && batches[0].header.attributes.timestampType == .logAppendTime)
                #expect(batches[0].records.map(\.timestamp) == [answer.logAppendTimeMs, answer.logAppendTimeMs])
                let byTime = ListOffsetsRequest(
                    replicaId: -1,
                    topics: [.init(name: "stamped", partitions: [.init(partitionIndex: 0, timestamp: before)])]
                )
                let found = try await connection.send(byTime, version: 7).topics[0].partitions[0]
                #expect(found.offset == 0 && found.timestamp == answer.logAppendTimeMs)
            }
        }
    }

    @Test("CreateTime with bounds: a batch too far behind or ahead gets INVALID_TIMESTAMP and is not stored")
    func bounds() async throws {
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                try await create(
                    connection,
                    "bounded",
                    ["message.timestamp.before.max.ms": "3600000", "message.timestamp.after.max.ms": "60000"]
                )
                let old = try await produce(connection, "bounded", ["from 2023"])
                #expect(old.errorCode == ErrorCode.invalidTimestamp)
                #expect(old.errorMessage?.contains("message.timestamp.before.max.ms=3600000") == true)
                let now = wallClockMillis()
                let future = try await connection.send(
                    produceRequest("bounded", records: try batch(["tomorrow"], timestamp: now + 86_400_000))
                )
                #expect(future.responses[0].partitionResponses[0].errorCode == ErrorCode.invalidTimestamp)
                let current = try await connection.send(
                    produceRequest("bounded", records: try batch(["now"], timestamp: now))
                )
                #expect(current.responses[0].partitionResponses[0].errorCode == ErrorCode.none)
                #expect(current.responses[0].partitionResponses[0].baseOffset == 0, "nothing refused was stored")
            }
        }
    }
}
