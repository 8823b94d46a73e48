import ArgumentParser
import Logging
import NIOCore
import PetrelClient
import PetrelProtocol

/// Load generation with PetrelClient, for benchmarks: produce or consume N records as fast as the
/// client and the broker allow, and report the rate.
struct PerfCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perf",
        abstract: "Measure produce or consume throughput with the Swift client.",
        subcommands: [Produce.self, Consume.self]
    )

    static func report(_ what: String, records: Int, bytes: Int, seconds: Double) {
        let rate = Double(records) / max(seconds, 1e-9)
        let megabytes = Double(bytes) / 1_048_576 / max(seconds, 1e-9)
        print(
            #"{"operation":"\#(what)","records":\#(records),"seconds":\#(String(format: "%.3f", seconds)),"#
                + #""records_per_second":\#(Int(rate)),"megabytes_per_second":\#(String(format: "%.1f", megabytes))}"#
        )
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    struct Produce: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send N records of a given size; print the rate as JSON."
        )
        @OptionGroup var connection: BootstrapOption
        @Option(help: "The topic.") var topic: String
        @Option(help: "How many records.") var records: Int = 1_000_000
        @Option(help: "Bytes per record value.") var recordSize: Int = 100
        @Option(help: "Acknowledgement: all, 1 or 0.") var acks: AcksArgument = .init(.leader)
        @Option(help: "Batch compression.") var compression: CodecArgument = .init(.none)
        @Option(help: "Batch size in bytes.") var batchBytes: Int = 64 * 1024

        func run() async throws {
            var configuration = KafkaProducerConfiguration(bootstrap: try connection.addresses())
            configuration.security = try connection.security()
            configuration.acks = acks.acks
            configuration.idempotence = acks.acks == .all
            configuration.compression = compression.codec
            configuration.batchBytes = batchBytes
            configuration.linger = .milliseconds(5)
            let value = ByteBuffer(repeating: UInt8(ascii: "x"), count: recordSize)
            let count = records
            let topic = self.topic
            var started = ContinuousClock.now
            let failed = try await KafkaProducer.withProducer(configuration) { producer in
                // The first record creates the topic and warms the connection; time the rest.
                _ = try await producer.sendAndWait(ProducerRecord(topic: topic, value: value))
                started = ContinuousClock.now
                let failures = Task {
                    var failed = 0
                    for await report in producer.deliveryReports { if case .failure = report.result { failed += 1 } }
                    return failed
                }
                for _ in 1..<count { try await producer.send(ProducerRecord(topic: topic, value: value)) }
                await producer.flush()
                await producer.shutDown()
                return await failures.value
            }
            PerfCommand.report(
                "produce",
                records: count - 1,
                bytes: (count - 1) * recordSize,
                seconds: PerfCommand.seconds(since: started)
            )
            if failed > 0 { throw fail("\(failed) records were not delivered") }
        }
    }

    struct Consume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read N records from the beginning; print the rate as JSON."
        )
        @OptionGroup var connection: BootstrapOption
        @Option(help: "The topic.") var topic: String
        @Option(help: "How many records.") var records: Int = 1_000_000

        func run() async throws {
            let partitions = try await withAdmin(connection) { try await $0.describeTopic(topic).partitionCount }
            let starts = Dictionary(
                uniqueKeysWithValues: (0..<Int32(partitions)).map {
                    (TopicPartition(topic, $0), KafkaConsumerConfiguration.StartOffset.beginning)
                }
            )
            var configuration = KafkaConsumerConfiguration(
                bootstrap: try connection.addresses(),
                source: .partitions(starts)
            )
            configuration.security = try connection.security()
            configuration.bufferedRecords = 100_000
            let want = records
            let started = ContinuousClock.now
            let (count, bytes) = try await KafkaConsumer.withConsumer(configuration) { consumer in
                var count = 0
                var bytes = 0
                for try await record in consumer.messages {
                    count += 1
                    bytes += record.value?.readableBytes ?? 0
                    if count == want { break }
                }
                return (count, bytes)
            }
            PerfCommand.report("consume", records: count, bytes: bytes, seconds: PerfCommand.seconds(since: started))
        }
    }
}
