import NIOCore
import PetrelClient
import PetrelProtocol
import Testing

/// Many tasks sending, flushing and being cancelled at once against a broker: a lost wake-up shows up
/// as a hang, which the watchdog turns into a failure instead of a stuck test run.
@Suite("Producer under concurrent send, flush and cancel", .serialized)
struct ProducerStressTests {
    @Test("16 tasks × 400 rounds of send, flush and cancelled flushes never hang; every report arrives once")
    func concurrentSendFlushCancel() async throws {
        try await TestCluster.with { bootstrap in
            let topic = TestCluster.uniqueTopic("stress")
            let admin = KafkaAdmin(bootstrap: [bootstrap])
            try await admin.createTopic(topic, partitions: 4, replicationFactor: 1)
            await admin.close()
            for acks in [KafkaProducerConfiguration.Acks.all, .none] {
                var configuration = TestCluster.producerConfiguration(bootstrap)
                configuration.acks = acks
                configuration.idempotence = acks == .all
                configuration.bufferBytes = 4 * 1024  // small, so room waits happen too
                let producerConfiguration = configuration
                let (sent, reported) = try await withWatchdog(seconds: 120, "acks \(acks)") {
                    try await KafkaProducer.withProducer(producerConfiguration) { producer in
                        let reports = Task {
                            var ids = Set<UInt64>()
                            for await report in producer.deliveryReports {
                                #expect(ids.insert(report.id).inserted, "report \(report.id) twice")
                                if case .failure(let error) = report.result {
                                    Issue.record("delivery failed: \(error)")
                                }
                            }
                            return ids.count
                        }
                        let sent = try await withThrowingTaskGroup(of: Int.self) { tasks in
                            for worker in 0..<16 {
                                tasks.addTask {
                                    var sent = 0
                                    for round in 0..<400 {
                                        let value = ByteBuffer(
                                            string: "w\(worker)-r\(round)-" + String(repeating: "x", count: 100)
                                        )
                                        try await producer.send(ProducerRecord(topic: topic, key: nil, value: value))
                                        sent += 1
                                        switch round % 3 {
                                        case 0: await producer.flush()
                                        case 1:
                                            // A flush whose task is cancelled at once, before or after it parks.
                                            let flush = Task { await producer.flush() }
                                            flush.cancel()
                                            await flush.value
                                        default: break
                                        }
                                    }
                                    return sent
                                }
                            }
                            return try await tasks.reduce(0, +)
                        }
                        await producer.flush()
                        await producer.shutDown()
                        return (sent, await reports.value)
                    }
                }
                #expect(sent == 16 * 400)
                #expect(reported == sent, "every record reported once (acks \(acks))")
            }
        }
    }
}

extension ProducerStressTests {
    @Test("sendAndWait from many tasks, some cancelled at once: every caller returns, the rest are stored")
    func concurrentSendAndWait() async throws {
        try await TestCluster.with { bootstrap in
            let topic = TestCluster.uniqueTopic("stress-await")
            let configuration = TestCluster.producerConfiguration(bootstrap)
            let (stored, cancelled) = try await withWatchdog(seconds: 120, "sendAndWait") {
                try await KafkaProducer.withProducer(configuration) { producer in
                    try await withThrowingTaskGroup(of: (Int, Int).self) { tasks in
                        for worker in 0..<8 {
                            tasks.addTask {
                                var stored = 0
                                var cancelled = 0
                                for round in 0..<100 {
                                    let record = ProducerRecord(
                                        topic: topic,
                                        key: nil,
                                        value: ByteBuffer(string: "w\(worker)-r\(round)")
                                    )
                                    let send = Task { try await producer.sendAndWait(record) }
                                    if round % 4 == 0 { send.cancel() }
                                    switch await send.result {
                                    case .success(let metadata):
                                        #expect(metadata.offset >= 0)
                                        stored += 1
                                    case .failure(let error):
                                        #expect(error is CancellationError, "\(error)")
                                        cancelled += 1
                                    }
                                }
                                return (stored, cancelled)
                            }
                        }
                        return try await tasks.reduce((0, 0)) { ($0.0 + $1.0, $0.1 + $1.1) }
                    }
                }
            }
            #expect(stored + cancelled == 800)
            #expect(stored >= 600, "only the cancelled quarter may have stopped waiting")
        }
    }
}

struct WatchdogExpired: Error, CustomStringConvertible {
    var what: String
    var description: String { "\(what) did not finish in time: a hang" }
}

/// Runs `body`, failing with WatchdogExpired if it has not finished after `seconds`. The body runs in
/// a task of its own, so a body that hangs (even through cancellation) cannot hang the test with it.
func withWatchdog<Result: Sendable>(
    seconds: Int,
    _ what: String,
    _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    let (outcomes, outcome) = AsyncStream.makeStream(of: Swift.Result<Result, any Error>?.self)
    let work = Task {
        do {
            outcome.yield(.success(try await body()))
        } catch {
            outcome.yield(.failure(error))
        }
    }
    let timer = Task {
        try? await Task.sleep(for: .seconds(seconds))
        outcome.yield(nil)
    }
    var iterator = outcomes.makeAsyncIterator()
    let first = await iterator.next() ?? nil
    timer.cancel()
    guard let first else {
        work.cancel()
        throw WatchdogExpired(what: what)
    }
    return try first.get()
}
