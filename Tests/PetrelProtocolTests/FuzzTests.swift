import Foundation
import NIOCore
import PetrelProtocol
import Testing

/// A bounded mutation fuzzer over everything the broker decodes from a socket: the frame decoder, the
/// request header, every request body at every version, and produced record batches (with their CRC
/// fixed up, so the mutations reach the record parser rather than stopping at the checksum). Seeds are
/// the requests captured from real clients plus a sample of every request at every version. Every
/// input must decode or throw; a trap ends the test process, which fails the run. Time-bounded by
/// PETREL_FUZZ_SECONDS (default 20 per test).
@Suite("Fuzzing the decoders")
struct FuzzTests {
    static let budget = Duration.seconds(Int(ProcessInfo.processInfo.environment["PETREL_FUZZ_SECONDS"] ?? "") ?? 20)

    /// PETREL_FUZZ_SEED repeats a run; otherwise the clock picks one, printed before anything is tried.
    static func seed(_ salt: UInt64) -> UInt64 {
        let seed =
            UInt64(ProcessInfo.processInfo.environment["PETREL_FUZZ_SEED"] ?? "")
            ?? (UInt64(Date().timeIntervalSince1970 * 1000) ^ salt)
        print("fuzz: seed \(seed) (PETREL_FUZZ_SEED=\(seed) repeats this run)")
        return seed
    }

    /// Whole request frames, length prefix included.
    static func seeds() throws -> [[UInt8]] {
        var seeds = try ClientFixtureTests.fixtures().map { Array($0.frame.readableBytesView) }
        for type in allSampledMessageTypes.compactMap({ $0 as? any (KafkaRequest & VersionedSample).Type }) {
            for version in type.validVersions {
                let header = RequestHeader(apiKey: type.apiKey, apiVersion: version, correlationID: 7, clientID: "fuzz")
                seeds.append(
                    Array(AnyRequest(header: header, body: type.sample(version: version)).encoded().readableBytesView)
                )
            }
        }
        return seeds
    }

    /// Decodes one input the way a connection does: frames out of the bytes, then each frame's header
    /// and body, and a produced batch through the validator. Returns how many bodies decoded whole.
    static func decodeLikeTheBroker(_ bytes: [UInt8]) -> Int {
        var decoder = KafkaFrameDecoder(maxFrameBytes: 1 << 20)
        var input = ByteBuffer(bytes: bytes)
        var decoded = 0
        while let frame = try? decoder.decode(buffer: &input) {
            var body = frame
            guard let request = try? AnyRequest(from: &body) else { continue }
            decoded += 1
            if let produce = request.body as? ProduceRequest {
                for partition in produce.topicData.flatMap(\.partitionData) {
                    if let records = partition.records { _ = try? RecordBatchValidator.validateProduced(records) }
                }
            }
        }
        return decoded
    }

    @Test("mutated requests decode or are refused, never trap")
    func mutatedRequests() throws {
        let seeds = try Self.seeds()
        #expect(seeds.count > 150)
        var random = SplitMix64(seed: Self.seed(0))
        let started = ContinuousClock.now
        var inputs = 0
        var decoded = 0
        let startRSS = residentMegabytes()
        while ContinuousClock.now - started < Self.budget {
            for _ in 0..<256 {
                let seed = seeds[Int(random.next() % UInt64(seeds.count))]
                let other = seeds[Int(random.next() % UInt64(seeds.count))]
                decoded += Self.decodeLikeTheBroker(Mutator.mutate(seed, splicing: other, using: &random))
                inputs += 1
            }
        }
        let grown = residentMegabytes() - startRSS
        print(
            "fuzz: \(inputs) mutated request frames from \(seeds.count) seeds in \(ContinuousClock.now - started); \(decoded) decoded whole, the rest refused; resident memory grew \(grown) MB"
        )
        #expect(inputs > 1000)
        #expect(decoded > 0, "no mutation decoded: the harness is not reaching the body decoders")
        #expect(grown < 512)
    }

    @Test("mutated record batches with valid CRCs are validated or refused, never trap")
    func mutatedRecordBatches() throws {
        var batches: [[UInt8]] = []
        for fixture in try ClientFixtureTests.fixtures() where fixture.name.hasPrefix("Produce") {
            var frame = fixture.frame
            frame.moveReaderIndex(forwardBy: 4)
            let request = try #require(try AnyRequest(from: &frame).body as? ProduceRequest)
            for partition in request.topicData.flatMap(\.partitionData) {
                if let records = partition.records { batches.append(Array(records.readableBytesView)) }
            }
        }
        #expect(batches.count >= 4)
        var random = SplitMix64(seed: Self.seed(0x9E37))
        let started = ContinuousClock.now
        var inputs = 0
        var accepted = 0
        while ContinuousClock.now - started < Self.budget {
            for _ in 0..<256 {
                var bytes = Mutator.mutate(
                    batches[Int(random.next() % UInt64(batches.count))],
                    splicing: [],
                    using: &random
                )
                Self.fixCRC(&bytes)
                let buffer = ByteBuffer(bytes: bytes)
                if (try? RecordBatchValidator.validateProduced(buffer)) != nil { accepted += 1 }
                _ = try? RecordBatchDecoder.decodeBatches(buffer)
                inputs += 1
            }
        }
        print(
            "fuzz: \(inputs) mutated record batches (CRC fixed up) in \(ContinuousClock.now - started); \(accepted) passed validation, the rest refused"
        )
        #expect(inputs > 1000)
    }

    /// Recomputes a batch's CRC-32C over what it claims to cover, so the mutation is judged on content.
    static func fixCRC(_ bytes: inout [UInt8]) {
        guard bytes.count > RecordBatchHeader.crcCoveredOffset else { return }
        let crc = CRC32C.checksum(bytes[RecordBatchHeader.crcCoveredOffset...])
        for index in 0..<4 {
            bytes[RecordBatchHeader.crcOffset + index] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * index))
        }
    }
}

/// The mutations, each a classic: flip a bit, set an interesting byte or integer (the boundary values
/// that make lengths and counts lie), cut, duplicate or delete a range, splice in part of another seed.
enum Mutator {
    static let interesting32: [UInt32] = [
        0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0xFFFF_FFFE,
    ]

    static func mutate(_ seed: [UInt8], splicing other: [UInt8], using random: inout SplitMix64) -> [UInt8] {
        var bytes = seed
        for _ in 0..<(1 + Int(random.next() % 4)) where !bytes.isEmpty {
            let at = Int(random.next() % UInt64(bytes.count))
            switch random.next() % 8 {
            case 0: bytes[at] ^= UInt8(1 << (random.next() % 8))
            case 1: bytes[at] = [0x00, 0x01, 0x7F, 0x80, 0xFF][Int(random.next() % 5)]
            case 2:
                let value = interesting32[Int(random.next() % UInt64(interesting32.count))]
                for index in 0..<min(4, bytes.count - at) {
                    bytes[at + index] = UInt8(truncatingIfNeeded: value >> (24 - 8 * index))
                }
            case 3: bytes.removeLast(Int(random.next() % UInt64(bytes.count - at + 1)))
            case 4: bytes.removeSubrange(at..<min(bytes.count, at + 1 + Int(random.next() % 16)))
            case 5: bytes.insert(contentsOf: bytes[at..<min(bytes.count, at + 1 + Int(random.next() % 32))], at: at)
            case 6 where !other.isEmpty:
                let from = Int(random.next() % UInt64(other.count))
                bytes.replaceSubrange(at..<bytes.count, with: other[from...])
            default:
                // A varint that never ends: five continuation bytes.
                bytes.replaceSubrange(at..<min(bytes.count, at + 5), with: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
            }
        }
        return bytes
    }
}

/// A small, fast, seedable generator, so a failing run can be repeated from its seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// This process's resident set, in MB (Linux /proc).
func residentMegabytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
        let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
    else { return 0 }
    return kilobytes / 1024
}
