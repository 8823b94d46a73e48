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
    /// The descriptors the file parts may hold while they are sent; kept until the writes complete.
    var sendfileGrant: SendfileGrant?

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

    /// How many parts are sent from files.
    var fileParts: Int {
        parts.reduce(0) { count, part in
            if case .file = part { count + 1 } else { count }
        }
    }

    /// The same frame with every file part read into memory: what a TLS connection sends, since the
    /// records must pass through the encryption (as in Kafka, TLS costs fetch its zero-copy path), and
    /// what a response sends when the sendfile allowance is spent. The reads go through the descriptors
    /// the slices hold (no new ones), all in one trip to the thread pool for blocking I/O.
    func readingFiles(on threadPool: NIOThreadPool) async throws -> ResponseFrame {
        guard fileParts > 0 else { return self }
        let parts = self.parts
        var frame = self
        frame.parts = try await threadPool.runIfActive {
            try parts.map { part in
                guard case .file(let slice) = part else { return part }
                let bytes = try slice.readBytes()
                guard bytes.readableBytes == slice.length else { throw ResponseFrameError.segmentShorterThanIndexed }
                return .bytes(bytes)
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
/// (`LogSlice.openFileHandle`), closed once the write completes; the frame's `SendfileGrant` accounts
/// for them until then.
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
        let grant = frame.sendfileGrant
        done.futureResult.whenComplete { result in
            for handle in opened { try? handle.close() }
            withExtendedLifetime(grant) {}  // the descriptors are closed: give them back
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
