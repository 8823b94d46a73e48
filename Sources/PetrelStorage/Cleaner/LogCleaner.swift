import CThreadPriority
import Dispatch
import Logging
import NIOPosix
import PetrelProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The log cleaner's settings (Kafka's log.cleaner.*).
public struct LogCleanerConfiguration: Sendable, Hashable {
    /// Whether compacted topics are cleaned at all (log.cleaner.enable).
    public var isEnabled = true
    /// Cleanings that run at once, each on its own thread (log.cleaner.threads).
    public var threads = 1
    /// How long the cleaner sleeps when no partition needs cleaning (log.cleaner.backoff.ms).
    public var backoffMs: Int64 = 15_000
    /// Memory for key → offset maps across all cleaner threads (log.cleaner.dedupe.buffer.size); each
    /// cleaning takes its share, and no more than its log needs.
    public var dedupeBufferBytes = 128 * 1024 * 1024
    /// The most each cleaner thread reads per second, bytes (log.cleaner.io.max.bytes.per.second);
    /// 0 sets no limit, as in Kafka.
    public var maxBytesPerSecond: Double = 0

    public init() {}
}

/// Background compaction of every topic with cleanup.policy=compact. Cleanings run on threads of their
/// own, never on event loops or the Swift concurrency pool, at a lower CPU priority (nice 10) than
/// everything else in the broker: on a busy machine produce and fetch go first, and the cleaner takes
/// what is left. Which partition to clean and when is `CleanerSchedule`'s decision.
public final class LogCleaner: Sendable {
    private let logs: LogManager
    private let configuration: LogCleanerConfiguration
    private let schedule: Mutex<CleanerSchedule>
    private let threads: NIOThreadPool
    private let metrics: CleanerMetrics
    private let logger: Logger
    /// Set when `run` is cancelled: a cleaning under way stops at its next batch.
    private let stopping = Atomic<Bool>(false)

    public init(
        logs: LogManager,
        configuration: LogCleanerConfiguration,
        metrics: CleanerMetrics = .disabled,
        logger: Logger
    ) {
        self.logs = logs
        self.configuration = configuration
        self.schedule = Mutex(
            CleanerSchedule(threads: configuration.threads, backoffMs: configuration.backoffMs)
        )
        self.threads = NIOThreadPool(numberOfThreads: max(1, configuration.threads))
        self.metrics = metrics
        self.logger = logger
    }

    /// Cleans until cancelled. A cleaning under way when the task is cancelled stops at its next batch
    /// and removes what it wrote, so a shutdown does not wait for it.
    public func run() async {
        guard configuration.isEnabled else { return }
        threads.start()
        await withTaskCancellationHandler {
            await cleanUntilCancelled()
        } onCancel: {
            stopping.store(true, ordering: .relaxed)
        }
        try? await threads.shutdownGracefully()
    }

    /// The niceness of cleaner threads: below the event loops', which keep the default 0.
    static let niceness: Int32 = 10

    private func cleanUntilCancelled() async {
        logger.info(
            "log cleaner started",
            metadata: ["threads": "\(configuration.threads)", "backoffMs": "\(configuration.backoffMs)"]
        )
        while !Task.isCancelled {
            let now = wallClockMillis()
            let candidates = logs.allPartitions.compactMap { log in
                log.cleanableSection(now: now).map {
                    CleanerSchedule.Candidate(partition: TopicPartition(log.topic, log.partition), section: $0)
                }
            }
            let actions = schedule.withLock { $0.next(candidates: candidates, now: now) }
            var sleepUntil: Int64?
            await withDiscardingTaskGroup { group in
                for action in actions {
                    switch action {
                    case .clean(let partition):
                        group.addTask { await self.cleanOnCleanerThread(partition) }
                    case .sleep(let until):
                        sleepUntil = until
                    }
                }
            }
            if let sleepUntil {
                try? await Task.sleep(for: .milliseconds(max(1, sleepUntil - wallClockMillis())))
            }
        }
    }

    /// Cleans one partition now, on the calling thread (tests and tools).
    @discardableResult
    public func cleanNow(_ partition: TopicPartition) throws -> CleaningResult? {
        guard let log = logs.partition(topic: partition.topic, partition: partition.partition) else { return nil }
        let started = ContinuousClock.now
        var throttle = CleanerThrottle(bytesPerSecond: configuration.maxBytesPerSecond)
        guard
            let result = try log.clean(
                memoryBytes: memoryPerCleaning,
                now: wallClockMillis(),
                pace: { bytes in
                    let sleep = throttle.delay(afterReading: bytes, now: DispatchTime.now().uptimeNanoseconds)
                    if sleep > 0 {
                        // A cleaner thread, never an event loop: it may sleep.
                        var pause = timespec(tv_sec: Int(sleep / 1_000_000_000), tv_nsec: Int(sleep % 1_000_000_000))
                        nanosleep(&pause, nil)
                    }
                    return !self.stopping.load(ordering: .relaxed)
                }
            )
        else { return nil }
        let ended = wallClockMillis()
        metrics.record(result, duration: ContinuousClock.now - started, endedAtMs: ended)
        try logs.checkpointCleanerOffsets()
        return result
    }

    private var memoryPerCleaning: Int { configuration.dedupeBufferBytes / max(1, configuration.threads) }

    private func cleanOnCleanerThread(_ partition: TopicPartition) async {
        let outcome =
            (try? await threads.runIfActive {
                Self.lowerThreadPriority()
                return self.cleanReportingErrors(partition)
            }) ?? .nothingDone
        schedule.withLock { $0.finished(partition, outcome: outcome, now: wallClockMillis()) }
    }

    /// Makes the calling thread (a cleaner thread: they do nothing else) nicer, once; raising it back
    /// is never needed. On Linux a thread's niceness is its own.
    private static func lowerThreadPriority() {
        _ = petrel_lower_thread_priority(niceness)
    }

    private func cleanReportingErrors(_ partition: TopicPartition) -> CleanerSchedule.Outcome {
        do {
            guard let result = try cleanNow(partition) else { return .nothingDone }
            logger.info(
                "cleaned a compacted partition",
                metadata: [
                    "partition": "\(partition.topic)-\(partition.partition)", "passes": "\(result.passes)",
                    "bytesRead": "\(result.bytesRead)", "bytesWritten": "\(result.bytesWritten)",
                    "recordsRemoved": "\(result.recordsRemoved)", "firstDirtyOffset": "\(result.firstDirtyOffset)",
                ]
            )
            return .cleaned
        } catch is PartitionLog.CleaningStopped {
            logger.info(
                "log cleaning stopped for shutdown",
                metadata: ["partition": "\(partition.topic)-\(partition.partition)"]
            )
            return .nothingDone
        } catch {
            metrics.failures.increment()
            logger.error(
                "log cleaning failed; the partition is left alone for a while",
                metadata: ["partition": "\(partition.topic)-\(partition.partition)", "error": "\(error)"]
            )
            return .failed
        }
    }
}
