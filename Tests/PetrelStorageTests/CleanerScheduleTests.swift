import PetrelProtocol
import Testing

@testable import PetrelStorage

@Suite("Cleaner schedule")
struct CleanerScheduleTests {
    private func candidate(
        _ topic: String,
        dirty: Int,
        clean: Int = 100,
        overdue: Bool = false,
        minRatio: Double = 0.5
    )
        -> CleanerSchedule.Candidate
    {
        CleanerSchedule.Candidate(
            partition: TopicPartition(topic, 0),
            section: CleanableSection(
                firstDirtyOffset: 0,
                firstUncleanableOffset: 10,
                cleanBytes: clean,
                dirtyBytes: dirty,
                isOverdue: overdue,
                minCleanableDirtyRatio: minRatio
            )
        )
    }

    @Test("the dirtiest partition above its ratio goes first, one per thread; the rest wait")
    func dirtiestFirst() {
        var schedule = CleanerSchedule(threads: 1, backoffMs: 15_000)
        let candidates = [candidate("a", dirty: 150), candidate("b", dirty: 900), candidate("c", dirty: 10)]
        #expect(schedule.next(candidates: candidates, now: 0) == [.clean(TopicPartition("b", 0))])
        // While b runs the only thread is busy: nothing starts, and no sleep either (b's end wakes it).
        #expect(schedule.next(candidates: candidates, now: 10).isEmpty)
        schedule.finished(TopicPartition("b", 0), outcome: .cleaned, now: 20)
        let after = [candidate("a", dirty: 150), candidate("b", dirty: 0), candidate("c", dirty: 10)]
        #expect(schedule.next(candidates: after, now: 20) == [.clean(TopicPartition("a", 0))])
        schedule.finished(TopicPartition("a", 0), outcome: .cleaned, now: 30)
        // c's ratio (10 / 110) is below 0.5: nothing to do, sleep for the backoff.
        #expect(schedule.next(candidates: [candidate("c", dirty: 10)], now: 30) == [.sleep(untilMs: 15_030)])
    }

    @Test("overdue partitions (max.compaction.lag.ms) are cleaned whatever their ratio, before the dirtiest")
    func overdue() {
        var schedule = CleanerSchedule(threads: 2, backoffMs: 1_000)
        let candidates = [
            candidate("dirty", dirty: 900), candidate("late", dirty: 1, overdue: true),
            candidate("dirtier", dirty: 950),
        ]
        #expect(
            schedule.next(candidates: candidates, now: 0) == [
                .clean(TopicPartition("late", 0)), .clean(TopicPartition("dirtier", 0)),
            ]
        )
        #expect(schedule.inProgress.count == 2)
    }

    @Test("a partition whose cleaning failed is skipped until its failure backoff passes")
    func failureBackoff() {
        var schedule = CleanerSchedule(threads: 1, backoffMs: 1_000, failureBackoffMs: 60_000)
        let broken = [candidate("broken", dirty: 500)]
        #expect(schedule.next(candidates: broken, now: 0) == [.clean(TopicPartition("broken", 0))])
        schedule.finished(TopicPartition("broken", 0), outcome: .failed, now: 100)
        #expect(schedule.next(candidates: broken, now: 200) == [.sleep(untilMs: 1_200)])
        #expect(schedule.next(candidates: broken, now: 60_099) == [.sleep(untilMs: 61_099)])
        #expect(schedule.next(candidates: broken, now: 60_100) == [.clean(TopicPartition("broken", 0))])
        #expect(schedule.failedUntil.isEmpty)
    }

    @Test("a partition with nothing dirty is never picked, even at ratio 0")
    func nothingDirty() {
        var schedule = CleanerSchedule(threads: 1, backoffMs: 500)
        #expect(schedule.next(candidates: [candidate("idle", dirty: 0, minRatio: 0)], now: 7) == [.sleep(untilMs: 507)])
    }
}
