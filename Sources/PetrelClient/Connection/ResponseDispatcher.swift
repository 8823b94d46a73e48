import NIOCore
import PetrelProtocol

/// One request written to the broker.
struct OutgoingRequest {
    var frame: ByteBuffer
    var correlationID: Int32
    /// Nil for requests that get no response (acks=0 produce).
    var promise: EventLoopPromise<ByteBuffer>?
}

/// Pairs each response with the oldest request awaiting one (the broker answers in order) and checks
/// the correlation id. When the connection ends, every waiting request fails.
final class ResponseDispatcher: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = OutgoingRequest
    typealias OutboundOut = ByteBuffer

    private var waiting = CircularBuffer<(Int32, EventLoopPromise<ByteBuffer>)>()

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        guard context.channel.isActive else {
            request.promise?.fail(KafkaClientError.connectionClosed)
            promise?.fail(KafkaClientError.connectionClosed)
            return
        }
        if let response = request.promise { waiting.append((request.correlationID, response)) }
        context.write(wrapOutboundOut(request.frame), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var frame = unwrapInboundIn(data)
        guard let (expected, promise) = waiting.popFirst() else {
            context.fireErrorCaught(KafkaClientError.unexpectedResponse("a response nobody asked for"))
            context.close(promise: nil)
            return
        }
        guard let correlationID = frame.readInteger(as: Int32.self), correlationID == expected else {
            promise.fail(KafkaClientError.unexpectedResponse("correlation id mismatch"))
            context.close(promise: nil)
            return
        }
        promise.succeed(frame)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failAll(KafkaClientError.connectionClosed)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(KafkaClientError.connectionClosed)
        context.fireChannelInactive()
    }

    private func failAll(_ error: any Error) {
        while let (_, promise) = waiting.popFirst() { promise.fail(error) }
    }
}
