import Testing

@testable import PetrelStorage

@Suite("Cleaner throttle")
struct CleanerThrottleTests {
    @Test("reading faster than the limit sleeps away the excess at the end of each window")
    func limits() {
        var throttle = CleanerThrottle(bytesPerSecond: 1_000_000, checkIntervalNanos: 100_000_000)
        // 1 MB in 0.1 s is ten times the limit: a second's worth, so 0.9 s more to sleep.
        #expect(throttle.delay(afterReading: 500_000, now: 0) == 0)
        #expect(throttle.delay(afterReading: 500_000, now: 100_000_000) == 900_000_000)
        // The next window starts after the sleep: 50 KB in 0.1 s is under the limit, no sleep.
        #expect(throttle.delay(afterReading: 50_000, now: 1_000_000_000) == 0)
        #expect(throttle.delay(afterReading: 0, now: 1_100_000_000) == 0)
    }

    @Test("no limit never sleeps")
    func unlimited() {
        var throttle = CleanerThrottle(bytesPerSecond: 0)
        #expect(throttle.delay(afterReading: 1 << 30, now: 0) == 0)
        #expect(throttle.delay(afterReading: 1 << 30, now: 200_000_000) == 0)
    }
}
