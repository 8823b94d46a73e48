import NIOCore

/// Closes a connection that has had no traffic for the idle timeout and is not being served a request
/// (a long poll may outlast the timeout), like Kafka's connections.max.idle.ms.
///
/// Time is the event loop's (`eventLoop.now`), not the wall clock, so tests drive it with an
/// `EmbeddedEventLoop`'s virtual time (NIO's `IdleStateHandler` reads the wall clock).
final class IdleConnectionCloser: ChannelDuplexHandler {
    typealias InboundIn = NIOAny
    typealias InboundOut = NIOAny
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private let timeout: TimeAmount
    private let isActive: @Sendable () -> Bool
    private let onClose: @Sendable () -> Void
    private var lastTraffic: NIODeadline = .uptimeNanoseconds(0)
    private var check: Scheduled<Void>?

    /// `isActive` tells whether the broker is busy with a request from this connection, or just was;
    /// `onClose` is told when an idle connection is closed (metrics, logs).
    init(timeout: TimeAmount, isActive: @escaping @Sendable () -> Bool, onClose: @escaping @Sendable () -> Void) {
        self.timeout = timeout
        self.isActive = isActive
        self.onClose = onClose
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        check?.cancel()
        check = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        check?.cancel()
        check = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastTraffic = context.eventLoop.now
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        lastTraffic = context.eventLoop.now
        context.write(data, promise: promise)
    }

    private func start(_ context: ChannelHandlerContext) {
        guard check == nil else { return }
        lastTraffic = context.eventLoop.now
        schedule(context, at: lastTraffic + timeout)
    }

    private func schedule(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        check = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = loopBound.value
            handler.checkIdle(context)
        }
    }

    private func checkIdle(_ context: ChannelHandlerContext) {
        let now = context.eventLoop.now
        let quietUntil = lastTraffic + timeout
        if now < quietUntil {
            schedule(context, at: quietUntil)
        } else if isActive() {
            // Busy with a request (a long poll is quiet on the wire): look again after another timeout.
            schedule(context, at: now + timeout)
        } else {
            check = nil
            onClose()
            context.close(promise: nil)
        }
    }
}
