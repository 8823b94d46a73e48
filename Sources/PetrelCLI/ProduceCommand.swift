import ArgumentParser
import Foundation
import Logging
import NIOCore
import PetrelClient
import PetrelProtocol

#if canImport(Glibc)
import Glibc
#endif

struct ProduceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "produce",
        abstract: "Publish one record per input line (standard input unless --file).",
        discussion:
            "With --key-separator, each line is KEY<separator>VALUE. The topic is created if it does not exist and the broker allows it."
    )

    @OptionGroup var connection: BootstrapOption

    @Option(help: "The topic to publish to.")
    var topic: String

    @Option(help: "Split each line at the first occurrence of this into key and value.")
    var keySeparator: String?

    @Option(help: "Acknowledgement: all, 1 or 0.")
    var acks: AcksArgument = .init(.all)

    @Option(help: "Batch compression: none, gzip, snappy, lz4 or zstd.")
    var compression: CodecArgument = .init(.none)

    @Option(name: .customLong("header"), help: "A header added to every record, KEY=VALUE (repeatable).")
    var headers: [String] = []

    @Option(help: "Send every record to this partition instead of choosing by key.")
    var partition: Int32?

    @Option(help: "Read lines from this file instead of standard input.")
    var file: String?

    @Flag(help: "Turn off the idempotent producer (on by default with --acks all).")
    var noIdempotence = false

    @Option(
        help:
            "Input format: text (one value per line, or KEY<sep>VALUE) or json (one object per line with value, and optionally key, headers, partition)."
    )
    var format: InputFormat = .text

    @Option(help: "Stop after this many records.")
    var count: Int?

    @Option(help: "At most this many records per second.")
    var rate: Double?

    enum InputFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
        case text
        case json
    }

    @Option(help: "Milliseconds a batch waits for more records.")
    var lingerMs: Int64 = 5

    @Option(
        help:
            "Milliseconds to wait for the broker (not reachable yet, or the topic not ready) before failing (Kafka's max.block.ms)."
    )
    var maxBlockMs: Int64 = 60_000

    func validate() throws {
        if let keySeparator, keySeparator.isEmpty { throw ValidationError("--key-separator cannot be empty.") }
        for header in headers where !header.contains("=") {
            throw ValidationError("--header must be KEY=VALUE, got \(header).")
        }
        if TopicName.invalidityReason(topic) != nil {
            throw ValidationError("--topic \(topic) is not a legal topic name.")
        }
        if let count, count <= 0 { throw ValidationError("--count must be at least 1.") }
        if let rate, rate <= 0 { throw ValidationError("--rate must be positive.") }
        if maxBlockMs < 0 { throw ValidationError("--max-block-ms must not be negative.") }
        if format == .json && keySeparator != nil {
            throw ValidationError("--key-separator applies to text input only.")
        }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .error
            return handler
        }
        var configuration = KafkaProducerConfiguration(bootstrap: try connection.addresses())
        configuration.security = try connection.security()
        configuration.acks = acks.acks
        configuration.idempotence = !noIdempotence && acks.acks == .all
        configuration.compression = compression.codec
        configuration.linger = .milliseconds(lingerMs)
        configuration.deliveryTimeout = .seconds(30)
        configuration.maxBlock = .milliseconds(maxBlockMs)
        let patience = Self.seconds(maxBlockMs)
        configuration.onWaitingForCluster = { failure in
            let what = failure.unreachableBroker ?? "the cluster: \(failure)"
            writeToStandardError("petrel: waiting for \(what); retrying for up to \(patience)\n")
        }
        let recordHeaders = headers.map { header -> RecordHeader in
            let parts = header.split(separator: "=", maxSplits: 1)
            return RecordHeader(
                key: String(parts[0]),
                value: ByteBuffer(string: parts.count > 1 ? String(parts[1]) : "")
            )
        }
        let started = ContinuousClock.now
        let summary = try await KafkaProducer.withProducer(configuration) { producer -> (Int, Int, Int, String?) in
            let reports = Task { () -> (delivered: Int, failed: Int, firstError: String?) in
                var counts = (delivered: 0, failed: 0, firstError: String?.none)
                for await report in producer.deliveryReports {
                    switch report.result {
                    case .success: counts.delivered += 1
                    case .failure(let error):
                        counts.failed += 1
                        if counts.firstError == nil { counts.firstError = "\(error)" }
                    }
                }
                return counts
            }
            var sent = 0
            let pace = rate.map { Duration.seconds(1 / $0) }
            var nextSend = ContinuousClock.now
            do {
                reading: for await chunk in InputLines(path: file) {
                    for line in chunk {
                        if let count, sent >= count { break reading }
                        if format == .text && line.isEmpty { continue }
                        try await producer.send(try record(from: line, headers: recordHeaders, lineNumber: sent + 1))
                        sent += 1
                        if sent % 100_000 == 0 { writeToStandardError("... \(sent) records sent\n") }
                        if let pace {
                            nextSend += pace
                            try await Task.sleep(until: nextSend, clock: .continuous)
                        }
                    }
                }
            } catch {
                reports.cancel()
                throw error
            }
            await producer.flush()
            await producer.shutDown()
            let counts = await reports.value
            return (sent, counts.delivered, counts.failed, counts.firstError)
        }
        let seconds = PerfCommand.seconds(since: started)
        let throughput = seconds > 0 ? Int(Double(summary.1) / seconds) : summary.1
        writeToStandardError(
            "produced \(summary.1) of \(summary.0) records to \(topic) in \(String(format: "%.2f", seconds)) s (\(throughput) records/s), \(summary.2) failed\n"
        )
        if summary.2 > 0 { throw fail("\(summary.2) records were not delivered: \(summary.3 ?? "unknown error")") }
    }
}

extension ProduceCommand {
    /// 60000 → "60 s", 2500 → "2.5 s".
    static func seconds(_ milliseconds: Int64) -> String {
        milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(Double(milliseconds) / 1000) s"
    }

    /// One input line as a record: text (VALUE, or KEY<sep>VALUE) or a JSON object.
    func record(from line: String, headers: [RecordHeader], lineNumber: Int) throws -> ProducerRecord {
        switch format {
        case .text:
            var key: ByteBuffer?
            var value = line
            if let separator = keySeparator, let range = line.range(of: separator) {
                key = ByteBuffer(string: String(line[..<range.lowerBound]))
                value = String(line[range.upperBound...])
            }
            return ProducerRecord(
                topic: topic,
                partition: partition,
                key: key,
                value: ByteBuffer(string: value),
                headers: headers
            )
        case .json:
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw fail("line \(lineNumber) is not a JSON object")
            }
            let text = { (name: String) -> String? in
                switch object[name] {
                case let string as String: return string
                case is NSNull, nil: return nil
                case let other?:
                    return String(
                        data: try! JSONSerialization.data(withJSONObject: other, options: [.fragmentsAllowed]),
                        encoding: .utf8
                    )
                }
            }
            var recordHeaders = headers
            for (name, value) in (object["headers"] as? [String: Any] ?? [:]).sorted(by: { $0.key < $1.key }) {
                recordHeaders.append(RecordHeader(key: name, value: (value as? String).map { ByteBuffer(string: $0) }))
            }
            return ProducerRecord(
                topic: topic,
                partition: (object["partition"] as? Int).map(Int32.init) ?? partition,
                key: text("key").map { ByteBuffer(string: $0) },
                value: text("value").map { ByteBuffer(string: $0) },
                headers: recordHeaders
            )
        }
    }
}

struct AcksArgument: ExpressibleByArgument, Sendable {
    var acks: KafkaProducerConfiguration.Acks
    init(_ acks: KafkaProducerConfiguration.Acks) { self.acks = acks }
    init?(argument: String) {
        switch argument {
        case "all", "-1": acks = .all
        case "1": acks = .leader
        case "0": acks = .none
        default: return nil
        }
    }
    var defaultValueDescription: String { "all" }
    static var allValueStrings: [String] { ["all", "1", "0"] }
}

struct CodecArgument: ExpressibleByArgument, Sendable {
    var codec: CompressionCodec
    init(_ codec: CompressionCodec) { self.codec = codec }
    init?(argument: String) {
        guard let codec = CompressionCodec.allCases.first(where: { $0.description == argument }) else { return nil }
        self.codec = codec
    }
    var defaultValueDescription: String { codec.description }
    static var allValueStrings: [String] { CompressionCodec.allCases.map(\.description) }
}
