import NIOCore
import PetrelProtocol

/// Every request the broker decodes off a socket, by API key.
let requestTypes: [APIKey: any KafkaRequest.Type] = [
    .produce: ProduceRequest.self, .fetch: FetchRequest.self, .listOffsets: ListOffsetsRequest.self,
    .metadata: MetadataRequest.self, .offsetCommit: OffsetCommitRequest.self, .offsetFetch: OffsetFetchRequest.self,
    .findCoordinator: FindCoordinatorRequest.self, .joinGroup: JoinGroupRequest.self, .heartbeat: HeartbeatRequest.self,
    .leaveGroup: LeaveGroupRequest.self, .syncGroup: SyncGroupRequest.self, .describeGroups: DescribeGroupsRequest.self,
    .listGroups: ListGroupsRequest.self, .saslHandshake: SaslHandshakeRequest.self, .apiVersions: ApiVersionsRequest.self,
    .createTopics: CreateTopicsRequest.self, .deleteTopics: DeleteTopicsRequest.self,
    .initProducerId: InitProducerIdRequest.self, .saslAuthenticate: SaslAuthenticateRequest.self,
    .offsetForLeaderEpoch: OffsetForLeaderEpochRequest.self, .deleteGroups: DeleteGroupsRequest.self,
]

/// libFuzzer's entry point: the input is bytes off a socket. They go through the frame decoder, the
/// request header and the body decoder of the API they name, then a produced batch through the
/// validator, exactly as a connection would take them. Errors are expected; a trap, an overflow or an
/// allocation over libFuzzer's -malloc_limit_mb is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: size))
    var decoder = KafkaFrameDecoder(maxFrameBytes: 1 << 20)
    while let frame = try? decoder.decode(buffer: &input) {
        var body = frame
        guard let header = try? RequestHeader(from: &body), let type = requestTypes[header.apiKey],
            type.validVersions.contains(header.apiVersion),
            (try? RequestHeader.skipTaggedFields(from: &body, headerVersion: type.headerVersion(for: header.apiVersion))) != nil,
            let request = try? type.decode(from: &body, version: header.apiVersion)
        else { continue }
        if let produce = request as? ProduceRequest {
            for topic in produce.topicData {
                for partition in topic.partitionData {
                    if let records = partition.records { _ = try? RecordBatchValidator.validateProduced(records) }
                }
            }
        }
    }
    return 0
}

/// libFuzzer's driver, for programs that keep their own main.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

/// The executable's entry point, under the name SwiftPM links `main` to: hands over to libFuzzer.
@_cdecl("FuzzRequests_main")
public func fuzzRequestsMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return runFuzzerDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) }
}
