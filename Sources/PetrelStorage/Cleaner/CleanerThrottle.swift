/// Keeps a cleaner thread's reading at or below a rate (Kafka's log.cleaner.io.max.bytes.per.second):
/// told the bytes of each batch read and the time, it answers how long to sleep. It measures over
/// windows of at least `checkIntervalNanos` and sleeps away a window's excess at its end. Time is a
/// parameter, so tests drive it with a fake clock.
struct CleanerThrottle: Sendable {
    /// 0: no limit.
    let bytesPerSecond: Double
    let checkIntervalNanos: UInt64
    private var windowStart: UInt64?
    private var bytesInWindow = 0

    init(bytesPerSecond: Double, checkIntervalNanos: UInt64 = 100_000_000) {
        self.bytesPerSecond = bytesPerSecond
        self.checkIntervalNanos = checkIntervalNanos
    }

    /// Nanoseconds to sleep after reading `bytes` at `now` (any monotonic clock, in nanoseconds).
    mutating func delay(afterReading bytes: Int, now: UInt64) -> UInt64 {
        guard bytesPerSecond > 0 else { return 0 }
        let start = windowStart ?? now
        windowStart = start
        bytesInWindow += bytes
        let elapsed = now &- start
        guard elapsed >= checkIntervalNanos else { return 0 }
        let allowed = UInt64(Double(bytesInWindow) / bytesPerSecond * 1e9)
        let sleep = allowed > elapsed ? allowed - elapsed : 0
        windowStart = now + sleep
        bytesInWindow = 0
        return sleep
    }
}
