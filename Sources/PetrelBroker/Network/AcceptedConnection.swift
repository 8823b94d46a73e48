import NIOCore

/// A client connection as the listener hands it over: the id it is known by (logs, the connection
/// registry, the idle check set up before the first byte) and its request and response streams.
struct AcceptedConnection: Sendable {
    let id: UInt64
    let channel: NIOAsyncChannel<ByteBuffer, ResponseFrame>
}
