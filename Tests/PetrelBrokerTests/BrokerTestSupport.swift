import Foundation
import Logging
import NIOCore
import NIOPosix
import PetrelClient
import PetrelProtocol
import PetrelTestSupport

@testable import PetrelBroker

func connect(_ port: Int) async throws -> KafkaConnection {
    try await KafkaConnection.connect(host: "127.0.0.1", port: port, clientID: "petrel-tests")
}

func createTopic(_ connection: KafkaConnection, _ name: String, partitions: Int32 = 1) async throws {
    let response = try await connection.send(
        CreateTopicsRequest(
            topics: [.init(name: name, numPartitions: partitions, replicationFactor: 1)],
            timeoutMs: 5000
        )
    )
    guard response.topics.first?.errorCode == ErrorCode.none else {
        throw KafkaClientError.broker(response.topics.first?.errorCode ?? .unknownServerError)
    }
}

func batch(_ values: [String], key: String? = nil, timestamp: Int64 = 1_700_000_000_000) throws -> ByteBuffer {
    var builder = RecordBatchBuilder()
    for (index, value) in values.enumerated() {
        builder.append(
            key: key.map { ByteBuffer(string: $0) },
            value: ByteBuffer(string: value),
            timestamp: timestamp + Int64(index)
        )
    }
    return try builder.build()
}

func produceRequest(_ topic: String, partition: Int32 = 0, records: ByteBuffer?, acks: Int16 = -1) -> ProduceRequest {
    ProduceRequest(
        acks: acks,
        timeoutMs: 5000,
        topicData: [.init(name: topic, partitionData: [.init(index: partition, records: records)])]
    )
}

/// Produces one batch and returns the partition's answer.
func produce(
    _ connection: KafkaConnection,
    _ topic: String,
    partition: Int32 = 0,
    _ values: [String],
    version: Int16 = 9
) async throws -> ProduceResponse.TopicProduceResponse.PartitionProduceResponse {
    let response = try await connection.send(
        produceRequest(topic, partition: partition, records: try batch(values)),
        version: version
    )
    return response.responses[0].partitionResponses[0]
}

func fetchRequest(
    _ topic: String,
    partition: Int32 = 0,
    offset: Int64,
    maxWaitMs: Int32 = 0,
    minBytes: Int32 = 0
) -> FetchRequest {
    FetchRequest(
        maxWaitMs: maxWaitMs,
        minBytes: minBytes,
        maxBytes: 1 << 20,
        sessionEpoch: -1,
        topics: [
            .init(
                topic: topic,
                partitions: [.init(partition: partition, fetchOffset: offset, partitionMaxBytes: 1 << 20)]
            )
        ]
    )
}

/// The values of every record a fetch returned.
func values(in response: FetchResponse) throws -> [String] {
    try response.responses.flatMap(\.partitions).flatMap { partition in
        try RecordBatchDecoder.decodeBatches(partition.records ?? ByteBuffer()).flatMap(\.records)
    }.map { String(buffer: $0.value!) }
}

/// Every value in a partition, fetching as a consumer does (one segment per fetch) up to the high watermark.
func fetchAllValues(_ connection: KafkaConnection, _ topic: String, partition: Int32 = 0) async throws -> [String] {
    var collected: [String] = []
    var offset: Int64 = 0
    while true {
        let response = try await connection.send(fetchRequest(topic, partition: partition, offset: offset), version: 12)
        let data = response.responses[0].partitions[0]
        let records = try RecordBatchDecoder.decodeBatches(data.records ?? ByteBuffer()).flatMap(\.records).filter {
            $0.offset >= offset
        }
        collected += records.map { String(buffer: $0.value!) }
        offset = (records.last?.offset ?? offset - 1) + 1
        if records.isEmpty || offset >= data.highWatermark { return collected }
    }
}

/// A bare connection for sending bytes no client would send.
struct RawSocket {
    let channel: any Channel

    init(port: Int) async throws {
        channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(
            host: "127.0.0.1",
            port: port
        ).get()
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    /// True if the broker closes the connection within the given time.
    func isClosedByPeer(within limit: Duration = .seconds(5)) async -> Bool {
        let closed = channel.closeFuture
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                (try? await closed.get()) != nil
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return false
            }
            let first = await group.next()!
            group.cancelAll()
            return first
        }
    }

    func close() async {
        try? await channel.close()
    }
}

/// Every record in the partition of `__consumer_offsets` that holds `group` (a default 16-partition topic).
func offsetsTopicRecords(_ connection: KafkaConnection, group: String) async throws -> [Record] {
    let index = OffsetsTopicRecord.partition(ofGroup: group, partitionCount: 16)
    let fetched = try await connection.send(
        fetchRequest("__consumer_offsets", partition: index, offset: 0),
        version: 12
    )
    return try fetched.responses.flatMap(\.partitions).flatMap { partition in
        try RecordBatchDecoder.decodeBatches(partition.records ?? ByteBuffer()).flatMap(\.records)
    }
}
