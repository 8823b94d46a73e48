import ArgumentParser
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
        discussion: "With --key-separator, each line is KEY<separator>VALUE. The topic is created if it does not exist and the broker allows it."
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

    @Option(help: "Milliseconds a batch waits for more records.")
    var lingerMs: Int64 = 5

    func validate() throws {
        if let keySeparator, keySeparator.isEmpty { throw ValidationError("--key-separator cannot be empty.") }
        for header in headers where !header.contains("=") {
            throw ValidationError("--header must be KEY=VALUE, got \(header).")
        }
        if TopicName.invalidityReason(topic) != nil { throw ValidationError("--topic \(topic) is not a legal topic name.") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .error
            return handler
        }
        var configuration = KafkaProducerConfiguration(bootstrap: try connection.addresses())
        configuration.acks = acks.acks
        configuration.idempotence = !noIdempotence && acks.acks == .all
        configuration.compression = compression.codec
        configuration.lingerMs = lingerMs
        configuration.deliveryTimeoutMs = 30_000
        let recordHeaders = headers.map { header -> RecordHeader in
            let parts = header.split(separator: "=", maxSplits: 1)
            return RecordHeader(key: String(parts[0]), value: ByteBuffer(string: parts.count > 1 ? String(parts[1]) : ""))
        }
        let started = ContinuousClock.now
        let summary = try await KafkaProducer.withProducer(configuration) { producer in
            // Check the broker and the topic up front, so a wrong address fails in one sentence.
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
            do {
                for await chunk in InputLines(path: file) {
                    for line in chunk {
                        var key: ByteBuffer?
                        var value = line
                        if let separator = keySeparator, let range = line.range(of: separator) {
                            key = ByteBuffer(string: String(line[..<range.lowerBound]))
                            value = String(line[range.upperBound...])
                        }
                        try await producer.send(
                            ProducerRecord(topic: topic, partition: partition, key: key, value: ByteBuffer(string: value), headers: recordHeaders))
                        sent += 1
                        if sent % 100_000 == 0 { writeToStandardError("... \(sent) records sent\n") }
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
        let seconds = Double((ContinuousClock.now - started).components.attoseconds) / 1e18 + Double((ContinuousClock.now - started).components.seconds)
        let rate = seconds > 0 ? Int(Double(summary.1) / seconds) : summary.1
        writeToStandardError("produced \(summary.1) of \(summary.0) records to \(topic) in \(String(format: "%.2f", seconds)) s (\(rate) records/s), \(summary.2) failed\n")
        if summary.2 > 0 { throw fail("\(summary.2) records were not delivered: \(summary.3 ?? "unknown error")") }
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
