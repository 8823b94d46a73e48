import NIOCore
import NIOPosix
import PetrelProtocol
import PetrelStorage

/// One response on the wire, length prefix included: bytes built in memory, interleaved (for Fetch)
/// with runs of record batches sent straight from segment files.
struct ResponseFrame: Sendable {
    enum Part: Sendable {
        case bytes(ByteBuffer)
        /// Sent with sendfile: the bytes never pass through user space.
        case file(LogSlice)
    }

    var parts: [Part]
    /// The first non-zero error code the response carries, 0 if none (counted as a failed request).
    var errorCode: ErrorCode

    /// Completed once everything written before it has gone to the socket (a barrier frame's reason to be).
    var written: EventLoopPromise<Void>?
    /// The connection closes once this response is out (a failed authentication).
    var closesConnection = false

    init(parts: [Part], errorCode: ErrorCode = .none) {
        self.parts = parts
        self.errorCode = errorCode
    }

    /// Sends nothing; `written` completes when every earlier frame has been written out.
    init(barrier written: EventLoopPromise<Void>) {
        self.parts = []
        self.errorCode = .none
        self.written = written
    }

    /// Encodes a whole response (header and body) into one buffer.
    init<Response: KafkaResponse>(
        _ response: Response,
        version: Int16,
        correlationID: Int32,
        allocator: ByteBufferAllocator
    ) {
        var buffer = allocator.buffer(capacity: 256)
        buffer.writeInteger(Int32(0))  // length, set below
        ResponseHeader(correlationID: correlationID).write(
            to: &buffer,
            headerVersion: Response.headerVersion(for: version)
        )
        response.write(to: &buffer, version: version)
        buffer.setInteger(Int32(buffer.readableBytes - 4), at: buffer.readerIndex)
        self.parts = [.bytes(buffer)]
        var firstError = ErrorCode.none
        response.forEachErrorCode { code in
            if firstError == ErrorCode.none { firstError = code }
        }
        self.errorCode = firstError
    }

    /// The same frame with every file part read into memory: what a TLS connection sends, since the
    /// records must pass through the encryption (as in Kafka, TLS costs fetch its zero-copy path).
    func readingFiles(with fileIO: NonBlockingFileIO, allocator: ByteBufferAllocator) async throws -> ResponseFrame {
        var frame = self
        frame.parts = []
        frame.parts.reserveCapacity(parts.count)
        for part in parts {
            switch part {
            case .bytes:
                frame.parts.append(part)
            case .file(let slice):
                let handle = try slice.openFileHandle()
                defer { try? handle.close() }
                let bytes = try await fileIO.read(
                    fileHandle: handle,
                    fromOffset: Int64(slice.position),
                    byteCount: slice.length,
                    allocator: allocator
                )
                guard bytes.readableBytes == slice.length else { throw ResponseFrameError.segmentShorterThanIndexed }
                frame.parts.append(.bytes(bytes))
            }
        }
        return frame
    }

    var byteCount: Int {
        parts.reduce(0) { total, part in
            switch part {
            case .bytes(let buffer): total + buffer.readableBytes
            case .file(let slice): total + slice.length
            }
        }
    }
}

/// Turns response frames into socket writes. File parts go out with sendfile from a handle of their own
/// (`LogSlice.openFileHandle`), closed once the write completes.
final class ResponseFrameWriter: ChannelOutboundHandler {
    typealias OutboundIn = ResponseFrame
    typealias OutboundOut = IOData

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = unwrapOutboundIn(data)
        var handles: [NIOFileHandle] = []
        let done = context.eventLoop.makePromise(of: Void.self)
        parts: for (index, part) in frame.parts.enumerated() {
            let isLast = index == frame.parts.count - 1
            switch part {
            case .bytes(let buffer):
                context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: isLast ? done : nil)
            case .file(let slice):
                do {
                    let handle = try slice.openFileHandle()
                    handles.append(handle)
                    let region = FileRegion(
                        fileHandle: handle,
                        readerIndex: slice.position,
                        endIndex: slice.position + slice.length
                    )
                    context.write(wrapOutboundOut(.fileRegion(region)), promise: isLast ? done : nil)
                } catch {
                    // Without the records the response would be corrupt: drop the connection instead.
                    done.fail(error)
                    context.close(promise: nil)
                    break parts
                }
            }
        }
        if frame.parts.isEmpty {
            // Writes complete in order, so an empty write completes after every earlier one.
            context.writeAndFlush(
                wrapOutboundOut(.byteBuffer(context.channel.allocator.buffer(capacity: 0))),
                promise: done
            )
        }
        if let written = frame.written { done.futureResult.cascade(to: written) }
        let opened = handles
        done.futureResult.whenComplete { result in
            for handle in opened { try? handle.close() }
            promise?.completeWith(result)
        }
    }
}

extension LogSlice {
    /// A handle of its own on the slice's segment file, for the caller to close: concurrent sends of one
    /// segment never contend for one handle, and a segment deleted or closed (retention) meanwhile stays
    /// readable until the handle is closed.
    func openFileHandle() throws -> NIOFileHandle {
        NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: try duplicateFileDescriptor())
    }
}

enum ResponseFrameError: Error {
    /// A segment file ended before the bytes its index promised (it was truncated under the fetch).
    case segmentShorterThanIndexed
}
