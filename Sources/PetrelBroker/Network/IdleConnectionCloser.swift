import NIOCore

/// Closes a connection that has had no traffic for the idle timeout and is not being served a request
/// (a long poll may outlast the timeout). Follows an `IdleStateHandler` with an all-traffic timeout,
/// like Kafka's connections.max.idle.ms.
final class IdleConnectionCloser: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    private let isActive: @Sendable () -> Bool
    private let onClose: @Sendable () -> Void

    /// `isActive` tells whether the broker is busy with a request from this connection, or just was;
    /// `onClose` is told when an idle connection is closed (metrics, logs).
    init(isActive: @escaping @Sendable () -> Bool, onClose: @escaping @Sendable () -> Void) {
        self.isActive = isActive
        self.onClose = onClose
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let idle = event as? IdleStateHandler.IdleStateEvent, idle == .all else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // The idle handler fires again after another timeout, so a busy connection is checked again then.
        guard !isActive() else { return }
        onClose()
        context.close(promise: nil)
    }
}
