import Foundation
import NIOCore
import PetrelBroker
import PetrelBrokerTestSupport
import PetrelClient
import PetrelProtocol
import PetrelTestSupport
import Testing

@Suite("ApiVersions and the advertised surface")
struct ApiVersionsTests {
    static let expected: [APIKey: ClosedRange<Int16>] = [
        .produce: 0...9, .fetch: 4...12, .listOffsets: 0...7, .metadata: 0...12, .apiVersions: 0...4,
        .createTopics: 0...7, .deleteTopics: 0...6, .initProducerId: 0...4, .findCoordinator: 0...3,
        .joinGroup: 0...7, .syncGroup: 0...5, .heartbeat: 0...4, .leaveGroup: 0...5, .offsetCommit: 0...9,
        .offsetFetch: 0...9, .describeGroups: 0...5, .listGroups: 0...5, .deleteGroups: 0...2,
        .saslHandshake: 0...1, .saslAuthenticate: 0...2, .describeConfigs: 0...4,
        .alterConfigs: 0...2, .incrementalAlterConfigs: 0...1, .createPartitions: 0...3, .describeCluster: 0...1,
        .describeLogDirs: 0...4, .offsetDelete: 0...0, .describeProducers: 0...0,
        .deleteRecords: 0...2, .addPartitionsToTxn: 0...3, .addOffsetsToTxn: 0...3, .endTxn: 0...3,
        .txnOffsetCommit: 0...3, .describeTransactions: 0...0, .listTransactions: 0...1,
        .consumerGroupHeartbeat: 0...1, .consumerGroupDescribe: 0...0,
    ]

    @Test("the broker advertises exactly the APIs it serves, in every ApiVersions version")
    func advertised() async throws {
        try await withBroker { broker, port in
            try await withConnection(port) { connection in
                #expect(
                    Dictionary(uniqueKeysWithValues: broker.servedAPIs.map { ($0.key, $0.versions) }) == Self.expected
                )
                for version: Int16 in 0...4 {
                    let response = try await connection.send(ApiVersionsRequest(), version: version)
                    #expect(response.errorCode == ErrorCode.none)
                    let advertised = Dictionary(
                        uniqueKeysWithValues: response.apiKeys.map {
                            (APIKey(rawValue: $0.apiKey), $0.minVersion...$0.maxVersion)
                        }
                    )
                    #expect(advertised == Self.expected, "ApiVersions v\(version)")
                }
            }
        }
    }

    @Test("the v3 response leaves out default-valued tagged fields (librdkafka 2.0.2 cannot skip them)")
    func noTaggedFields() async throws {
        let response = ApiVersionsResponse(
            errorCode: .none,
            apiKeys: [.init(apiKey: 18, minVersion: 0, maxVersion: 4)],
            throttleTimeMs: 0
        )
        var bytes = response.encoded(version: 3)
        // error code, compact array of one entry (3 int16 + its empty tag section), throttle time, empty tag section
        #expect(bytes.readableBytes == 2 + 1 + 7 + 4 + 1)
        bytes.moveReaderIndex(to: bytes.writerIndex - 1)
        #expect(bytes.readInteger(as: UInt8.self) == 0)
    }

    @Test("a too-new ApiVersions gets UNSUPPORTED_VERSION with our range in a v0 body, and the connection stays open")
    func tooNew() async throws {
        try await withBroker { _, port in
            try await withConnection(port, negotiateVersions: false) { connection in
                // The client sends v7; the broker answers in v0 form, which is how a client reads any error answer.
                let request = ApiVersionsRequest(clientSoftwareName: "future", clientSoftwareVersion: "9")
                let answer = try await connection.send(UnknownVersionApiVersions(inner: request), version: 7)
                #expect(answer.errorCode == ErrorCode.unsupportedVersion)
                #expect(answer.apiKeys == [.init(apiKey: 18, minVersion: 0, maxVersion: 4)])
                #expect(try await connection.send(ApiVersionsRequest(), version: 3).errorCode == ErrorCode.none)
            }
        }
    }

    @Test("docs/protocol.md lists exactly what ApiVersions advertises")
    func documentation() async throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../docs/protocol.md"
        )
        let text = try String(contentsOf: docs, encoding: .utf8)
        // Rows look like: | 0 | Produce | 0–9 | ... (a single version: | 47 | OffsetDelete | 0 | ...)
        var documented: [APIKey: ClosedRange<Int16>] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("| ") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 3, let key = Int16(cells[0]) else { continue }
            let bounds = cells[2].split(separator: "–").compactMap { Int16($0) }
            guard let low = bounds.first, let high = bounds.last, (1...2).contains(bounds.count) else { continue }
            documented[APIKey(rawValue: key)] = low...high
        }
        #expect(documented == Self.expected)
    }
}

/// An ApiVersions request sent at a version this library's schema does not define (encoded as v3,
/// whose body a v7 would extend), with the v0-form answer a broker gives to unknown versions.
struct UnknownVersionApiVersions: KafkaRequest {
    typealias Response = ApiVersionsV0Answer
    static let apiKey = APIKey.apiVersions
    static let validVersions: ClosedRange<Int16> = 0...7
    static let firstFlexibleVersion: Int16? = 3
    var inner: ApiVersionsRequest

    init(inner: ApiVersionsRequest) { self.inner = inner }
    init(from buffer: inout ByteBuffer, version: Int16) throws {
        inner = try ApiVersionsRequest(from: &buffer, version: 3)
    }
    func write(to buffer: inout ByteBuffer, version: Int16) { inner.write(to: &buffer, version: 3) }
}

/// Decodes any ApiVersions answer as v0, which is what a broker sends for versions it does not know.
struct ApiVersionsV0Answer: KafkaResponse {
    static let apiKey = APIKey.apiVersions
    static let validVersions: ClosedRange<Int16> = 0...7
    static let firstFlexibleVersion: Int16? = 3
    var errorCode: ErrorCode
    var apiKeys: [ApiVersionsResponse.ApiVersion]

    init(from buffer: inout ByteBuffer, version: Int16) throws {
        let v0 = try ApiVersionsResponse(from: &buffer, version: 0)
        errorCode = v0.errorCode
        apiKeys = v0.apiKeys
    }

    func write(to buffer: inout ByteBuffer, version: Int16) {}
    func forEachErrorCode(_ body: (ErrorCode) -> Void) { body(errorCode) }
}
