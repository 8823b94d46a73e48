import PetrelClient

extension KafkaConsumer {
    /// The next record, or nil once `idleSeconds` pass without one (0: wait as long as it takes).
    public func nextRecord(idleSeconds: Double) async throws -> ConsumerRecord? {
        guard idleSeconds > 0 else {
            var iterator = messages.makeAsyncIterator()
            return try await iterator.next()
        }
        return try await withThrowingTaskGroup(of: ConsumerRecord?.self) { group in
            group.addTask {
                var iterator = self.messages.makeAsyncIterator()
                return try await iterator.next()
            }
            group.addTask {
                try await Task.sleep(for: .seconds(idleSeconds))
                return nil
            }
            let first = try await group.next()!
            group.cancelAll()
            return first
        }
    }
}
