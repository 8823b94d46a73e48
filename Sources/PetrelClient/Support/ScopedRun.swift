/// Runs a client's `run()` in a child task for the duration of `body`, then asks it to finish with
/// `finish` and waits for it: the shape of `KafkaProducer.withProducer` and `KafkaConsumer.withConsumer`.
///
/// If `body` throws, `finish` still runs (a producer delivers what is queued, a consumer leaves its
/// group); with `cancelAfterFailure` the run is then cancelled rather than awaited to its natural
/// end. The body's error is the one thrown.
func withRunningClient<Result: Sendable>(
    run: @escaping @Sendable () async throws -> Void,
    finish: () async -> Void,
    cancelAfterFailure: Bool,
    _ body: () async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await run() }
        do {
            let result = try await body()
            await finish()
            try await group.waitForAll()
            return result
        } catch {
            await finish()
            if cancelAfterFailure { group.cancelAll() }
            try? await group.waitForAll()
            throw error
        }
    }
}
