import NIOCore

extension Duration {
    /// Whole milliseconds, rounded down: the unit of Kafka's wire fields and timestamps.
    var inMilliseconds: Int64 {
        components.seconds * 1_000 + components.attoseconds / 1_000_000_000_000_000
    }

    /// The same span as NIO's `TimeAmount`.
    var timeAmount: TimeAmount {
        .nanoseconds(components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000)
    }
}
