import Foundation

/// Lines of standard input (or a file) as an async sequence. A thread of its own does the blocking
/// reads, a bounded number of chunks ahead, so no Swift task ever blocks on the terminal.
struct InputLines: AsyncSequence, Sendable {
    typealias Element = [String]
    let path: String?

    struct Iterator: AsyncIteratorProtocol {
        var base: AsyncStream<[String]>.Iterator
        let room: DispatchSemaphore

        mutating func next() async -> [String]? {
            let chunk = await base.next()
            // Each chunk taken lets the reader read one more ahead.
            if chunk != nil { room.signal() }
            return chunk
        }
    }

    func makeAsyncIterator() -> Iterator {
        let (stream, continuation) = AsyncStream<[String]>.makeStream()
        let room = DispatchSemaphore(value: 8)
        let path = self.path
        let reader = Thread {
            let handle: UnsafeMutablePointer<FILE>? = path.map { fopen($0, "r") } ?? fdopen(STDIN_FILENO, "r")
            guard let handle else {
                continuation.finish()
                return
            }
            var chunk: [String] = []
            var line: UnsafeMutablePointer<CChar>?
            var capacity = 0
            while getline(&line, &capacity, handle) >= 0 {
                var text = String(cString: line!)
                if text.hasSuffix("\n") { text.removeLast() }
                if text.hasSuffix("\r") { text.removeLast() }
                chunk.append(text)
                if chunk.count == 1000 {
                    room.wait()
                    continuation.yield(chunk)
                    chunk = []
                }
            }
            free(line)
            if !chunk.isEmpty {
                room.wait()
                continuation.yield(chunk)
            }
            if path != nil { fclose(handle) }
            continuation.finish()
        }
        reader.start()
        return Iterator(base: stream.makeAsyncIterator(), room: room)
    }
}
