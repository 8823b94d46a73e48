import PetrelClient

extension KafkaConsumer {
    /// The next record, or nil once `idleSeconds` pass without one (0: wait as long as it takes). The
    /// idle clock starts only once the consumer holds partitions: joining a group can take a while (a
    /// crashed predecessor's session must time out first).
    public func nextRecord(idleSeconds: Double) async throws -> ConsumerRecord? {
        guard idleSeconds > 0 else {
            var iterator = messages.makeAsyncIterator()
            return try await iterator.next()
        }
        var waited = 0
        while assignment.isEmpty && waited < 600 {
            try await Task.sleep(for: .milliseconds(100))
            waited += 1
        }
        return try await nextRecord(timeout: .seconds(idleSeconds))
    }
}
