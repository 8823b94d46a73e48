// The log cleaner alone (`PartitionLog.clean`): how many MB of dirty log it compacts a second, and how
// much memory a cleaning takes when the log holds more keys than its key map. Each iteration fills a
// fresh log outside the measured region; the measured region is the cleaning, fsyncs of the cleaned
// segments included. Numbers are reported, not asserted; the one check is that a cleaning in passes
// leaves the log exactly as a cleaning in one pass does.

import Benchmark
import Foundation
import Logging
import NIOCore
import PetrelProtocol
import PetrelStorage

#if canImport(Glibc)
import Glibc
#endif

/// A dirty log's worth of keyed updates: `records` records over `keys` keys, each key drawn at random
/// (a fixed seed), so most keys are updated several times and the older values are the cleaner's to
/// remove, while some keys are written only once.
struct KeyedUpdates: Sendable {
    var records: Int
    var keys: Int
    var valueBytes: Int
    var recordsPerBatch = 64
    var segmentBytes = 4 * 1024 * 1024

    static let timestamp: Int64 = 1_700_000_000_000
    /// The cleaning's clock: after every record, so nothing is too young to clean.
    static let now: Int64 = 1_700_000_000_000 + 86_400_000

    /// The batches, built once and appended to every fresh log.
    func batches() throws -> [(ByteBuffer, RecordBatchHeader)] {
        var random = SplitMix64(seed: 0x5EED)
        var batches: [(ByteBuffer, RecordBatchHeader)] = []
        var builder = RecordBatchBuilder()
        var value = ByteBuffer(repeating: 0x76, count: valueBytes)
        for index in 0..<records {
            let key = Int(random.next() % UInt64(keys))
            // Each value starts with its record's number, so that values can be told apart.
            value.setInteger(UInt64(index), at: 0)
            builder.append(
                key: ByteBuffer(string: "user-\(key)"),
                value: value,
                timestamp: Self.timestamp + Int64(index)
            )
            if builder.recordCount == recordsPerBatch || index == records - 1 {
                let batch = try builder.build()
                batches.append((batch, try RecordBatchValidator.validateProduced(batch)))
                builder = RecordBatchBuilder()
            }
        }
        return batches
    }

    /// A new compacted log in a temporary folder holding `batches`, its last segment rolled so that all
    /// of them are cleanable.
    func filledLog(_ batches: [(ByteBuffer, RecordBatchHeader)]) throws -> (PartitionLog, String) {
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("petrel-bench-cleaner-\(UUID().uuidString)").path
        var config = LogConfig()
        config.segmentBytes = segmentBytes
        config.compacts = true
        config.deletesByRetention = false
        config.minCleanableDirtyRatio = 0
        let log = try PartitionLog(
            directory: folder,
            topic: "compacted",
            partition: 0,
            config: config,
            cleanShutdown: false,
            logger: Logger(label: "bench")
        )
        for (batch, header) in batches { _ = try log.append(batch, header: header, now: Self.timestamp) }
        // Roll the active segment: a cleaning never touches it.
        let segments = log.segmentCount
        var index = 0
        while log.segmentCount == segments {
            let (batch, header) = batches[index % batches.count]
            _ = try log.append(batch, header: header, now: Self.timestamp)
            index += 1
        }
        return (log, folder)
    }
}

/// A small, fast, seeded generator (the keys must be the same in every run).
struct SplitMix64 {
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

/// This process's resident memory, from /proc/self/status (Linux): now and its peak, in KiB.
func residentKiB() -> (now: Int, peak: Int) {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0) }
    func field(_ name: String) -> Int {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }
    return (field("VmRSS"), field("VmHWM"))
}

/// Makes the cleaning's memory show in the process's resident size, then resets the peak of resident
/// memory (VmHWM) to what is resident now (`echo 5 > /proc/self/clear_refs`), so that the next peak is
/// the cleaning's own. glibc (its functions looked up at run time: the Glibc module does not export
/// malloc.h) would otherwise hide it: freed heap stays resident and is reused without a page fault.
/// So free heap is handed back as soon as it is freed (fixed M_TRIM_THRESHOLD and M_MMAP_THRESHOLD of
/// 128 KiB, which also stop glibc from raising them after large frees) and once more before each
/// cleaning (malloc_trim).
func resetPeakResident() {
    #if canImport(Glibc)
    typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    typealias MallocTrim = @convention(c) (Int) -> Int32
    let trimThreshold: Int32 = -1  // M_TRIM_THRESHOLD
    let mmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD
    if let symbol = dlsym(nil, "mallopt") {
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        _ = mallopt(trimThreshold, 128 * 1024)
        _ = mallopt(mmapThreshold, 128 * 1024)
    }
    if let symbol = dlsym(nil, "malloc_trim") { _ = unsafeBitCast(symbol, to: MallocTrim.self)(0) }
    #endif
    try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
}

/// Every record of the log, through the fetch path.
func allRecords(of log: PartitionLog) throws -> [Record] {
    var records: [Record] = []
    var next = log.logStartOffset
    while next < log.logEndOffset {
        guard let slice = try log.read(from: next, maxBytes: 1 << 20).slice else { break }
        let batches = try RecordBatchDecoder.decodeBatches(try slice.readBytes())
        records += batches.flatMap(\.records).filter { $0.offset >= next }
        next = slice.nextOffset
    }
    return records
}

struct CleaningMismatch: Error, CustomStringConvertible {
    var description: String
}

/// One cleaning, measured: MB (10^6 bytes) of dirty log a second, the passes, the key map's size and the
/// growth of the process's resident memory during the cleaning.
func measureCleaning(
    _ benchmark: Benchmark,
    updates: KeyedUpdates,
    batches: [(ByteBuffer, RecordBatchHeader)],
    memoryBytes: Int
)
    throws
{
    let (log, folder) = try updates.filledLog(batches)
    defer {
        try? log.close()
        try? FileManager.default.removeItem(atPath: folder)
    }
    let dirtyBytes = log.cleanableSection(now: KeyedUpdates.now)?.dirtyBytes ?? 0
    resetPeakResident()
    let before = residentKiB().now
    benchmark.startMeasurement()
    let started = ContinuousClock.now
    let result = try log.clean(memoryBytes: memoryBytes, now: KeyedUpdates.now)
    let elapsed = ContinuousClock.now - started
    benchmark.stopMeasurement()
    guard let result else { throw CleaningMismatch(description: "the log had nothing to clean") }
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    benchmark.measurement(.custom("dirty MB/s", polarity: .prefersLarger), Int(Double(dirtyBytes) / 1e6 / seconds))
    benchmark.measurement(.custom("dirty MB"), dirtyBytes / 1_000_000)
    benchmark.measurement(.custom("passes"), result.passes)
    benchmark.measurement(.custom("map KiB"), result.mapBytes / 1024)
    benchmark.measurement(.custom("peak RSS growth KiB"), max(0, residentKiB().peak - before))
    benchmark.measurement(.custom("records removed"), result.recordsRemoved)
}

let cleanerCustomMetrics: [BenchmarkMetric] = [
    .custom("dirty MB/s", polarity: .prefersLarger), .custom("dirty MB"), .custom("passes"), .custom("map KiB"),
    .custom("peak RSS growth KiB"), .custom("records removed"),
]
let cleanerMetrics: [BenchmarkMetric] = [.wallClock, .mallocCountTotal] + cleanerCustomMetrics

/// ~32 MB of dirty log: 120,000 records of 256 B values over 30,000 keys (about 4 values a key, three
/// quarters of them superseded), in 4 MiB segments; the key map fits in one pass.
let throughputLog = KeyedUpdates(records: 120_000, keys: 30_000, valueBytes: 256)

/// More keys than a 4 MiB map holds (131,072 slots, filled to 0.9: 117,964 keys a pass): 600,000
/// records of 32 B values over 300,000 keys (about 259,000 of them written), 33 MB.
let manyKeysLog = KeyedUpdates(records: 600_000, keys: 300_000, valueBytes: 32)
let smallMapBytes = 4 * 1024 * 1024
/// The broker's default log-cleaner-dedupe-buffer-size: the same log in one pass.
let defaultMapBytes = 128 * 1024 * 1024

/// The cleaning in passes must leave exactly the log a cleaning in one pass leaves: the same records
/// at the same offsets, with the same keys and values.
func checkPassesMatchOnePass() throws {
    let (inPasses, smallFolder) = try manyKeysLog.filledLog(manyKeysBatches)
    let (inOne, largeFolder) = try manyKeysLog.filledLog(manyKeysBatches)
    defer {
        try? inPasses.close()
        try? inOne.close()
        try? FileManager.default.removeItem(atPath: smallFolder)
        try? FileManager.default.removeItem(atPath: largeFolder)
    }
    let passes = try inPasses.clean(memoryBytes: smallMapBytes, now: KeyedUpdates.now)
    let one = try inOne.clean(memoryBytes: defaultMapBytes, now: KeyedUpdates.now)
    guard let passes, let one, passes.passes > 1, one.passes == 1, passes.mapBytes <= smallMapBytes else {
        throw CleaningMismatch(
            description: "expected several passes within the small map and one pass within the large"
        )
    }
    guard try allRecords(of: inPasses) == allRecords(of: inOne) else {
        throw CleaningMismatch(description: "cleaning in \(passes.passes) passes left another log than one pass")
    }
}

/// Built once per process, on first use.
let throughputBatches = try! throughputLog.batches()
let manyKeysBatches = try! manyKeysLog.batches()

func cleanerBenchmarks() {
    // The custom metrics as measured, not scaled to K or M.
    let cleanerUnits = Dictionary(uniqueKeysWithValues: cleanerCustomMetrics.map { ($0, BenchmarkUnits.count) })
    Benchmark(
        "clean 32 MB of dirty log, 30,000 keys (one pass)",
        configuration: .init(metrics: cleanerMetrics, units: cleanerUnits, maxDuration: .seconds(20), maxIterations: 20)
    ) { benchmark in
        try measureCleaning(benchmark, updates: throughputLog, batches: throughputBatches, memoryBytes: defaultMapBytes)
    }

    Benchmark(
        "clean 260,000 keys within a 4 MiB map (passes)",
        configuration: .init(
            metrics: cleanerMetrics,
            units: cleanerUnits,
            maxDuration: .seconds(20),
            maxIterations: 10,
            setup: { try checkPassesMatchOnePass() }
        )
    ) { benchmark in
        try measureCleaning(benchmark, updates: manyKeysLog, batches: manyKeysBatches, memoryBytes: smallMapBytes)
    }

    Benchmark(
        "clean 260,000 keys within a 128 MiB map (one pass)",
        configuration: .init(metrics: cleanerMetrics, units: cleanerUnits, maxDuration: .seconds(20), maxIterations: 10)
    ) { benchmark in
        try measureCleaning(benchmark, updates: manyKeysLog, batches: manyKeysBatches, memoryBytes: defaultMapBytes)
    }
}
