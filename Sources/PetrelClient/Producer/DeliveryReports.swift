/// The outcome of every record given to `KafkaProducer.send(_:)`, in the order they complete.
///
/// Reports travel a produce response at a time, so reading them costs one hand-over per response, not
/// one per record. If nobody reads them, the reports of the newest 1,024 responses are kept.
public struct DeliveryReports: AsyncSequence, Sendable {
    public typealias Element = DeliveryReport

    let batches: AsyncStream<[DeliveryReport]>

    static func makeStream() -> (DeliveryReports, AsyncStream<[DeliveryReport]>.Continuation) {
        let (stream, continuation) = AsyncStream.makeStream(
            of: [DeliveryReport].self,
            bufferingPolicy: .bufferingNewest(1024)
        )
        return (DeliveryReports(batches: stream), continuation)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var batches: AsyncStream<[DeliveryReport]>.AsyncIterator
        var current: [DeliveryReport] = []
        var index = 0

        public mutating func next() async -> DeliveryReport? {
            while index == current.count {
                guard let batch = await batches.next() else { return nil }
                current = batch
                index = 0
            }
            defer { index += 1 }
            return current[index]
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(batches: batches.makeAsyncIterator())
    }
}
