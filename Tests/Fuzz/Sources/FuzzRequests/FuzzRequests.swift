import NIOCore
import PetrelProtocol

/// libFuzzer's entry point: the input is bytes off a socket. They go through the frame decoder, the
/// request header and the body decoder of the API they name (every generated request type), then a
/// produced batch through the validator, exactly as a connection would take them, and through the
/// consumer's batch decoder, as if a broker had sent it. Errors are expected; a trap, an overflow or
/// an allocation over libFuzzer's -malloc_limit_mb is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: size))
    var decoder = KafkaFrameDecoder(maxFrameBytes: 1 << 20)
    while let frame = try? decoder.decode(buffer: &input) {
        var body = frame
        guard let request = try? AnyRequest(from: &body), let produce = request.body as? ProduceRequest else {
            continue
        }
        for partition in produce.topicData.flatMap(\.partitionData) {
            guard let records = partition.records else { continue }
            _ = try? RecordBatchValidator.validateProduced(records)
            // Without the CRC check, so that mutated records reach the record decoder.
            _ = try? RecordBatchDecoder.decodeBatches(records, verifyCRC: false)
        }
    }
    return 0
}

/// libFuzzer's driver, for programs that keep their own main.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

/// The executable's entry point, under the name SwiftPM links `main` to: hands over to libFuzzer.
@_cdecl("FuzzRequests_main")
public func fuzzRequestsMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return runFuzzerDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) }
}
