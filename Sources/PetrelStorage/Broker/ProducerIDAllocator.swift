import Synchronization

/// Hands out producer ids that are never reused, across restarts too. Ids are reserved in blocks: the
/// end of the current block is made durable before any id in it is handed out, so a crash can skip
/// ids but never repeat one. Thread-safe.
public final class ProducerIDAllocator: Sendable {
    private let path: String
    private let blockSize: Int64
    private let state: Mutex<(next: Int64, blockEnd: Int64)>

    public init(directory: String, blockSize: Int64 = 1000) throws {
        self.path = directory + "/producer-id-block"
        self.blockSize = blockSize
        let start = try PropertiesFile.read(path)?["next.block.start"].flatMap { Int64($0) } ?? 0
        self.state = Mutex((next: start, blockEnd: start))
    }

    public func next() throws -> Int64 {
        try state.withLock { state in
            if state.next >= state.blockEnd {
                let end = state.next + blockSize
                try PropertiesFile.write([("next.block.start", String(end))], to: path)
                state.blockEnd = end
            }
            defer { state.next += 1 }
            return state.next
        }
    }
}
