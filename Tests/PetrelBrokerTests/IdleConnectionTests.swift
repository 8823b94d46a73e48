import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import PetrelBroker

/// connections.max.idle.ms on a virtual clock: an `EmbeddedChannel` with the broker's idle handlers,
/// time moved by hand, so no test waits on the wall clock.
@Suite("Idle connections")
struct IdleConnectionTests {
    private final class Probe: Sendable {
        let busy = Mutex(false)
        let closes = Mutex(0)
    }

    private func channel(timeout: TimeAmount, _ probe: Probe) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            IdleConnectionCloser(
                timeout: timeout,
                isActive: { probe.busy.withLock { $0 } },
                onClose: { probe.closes.withLock { $0 += 1 } }
            )
        )
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9092)).wait()
        return channel
    }

    @Test("a quiet connection is closed once the timeout passes, not before")
    func quiet() throws {
        let probe = Probe()
        let channel = try channel(timeout: .seconds(2), probe)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1999))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive)
        #expect(probe.closes.withLock { $0 } == 1)
    }

    @Test("traffic restarts the timeout")
    func traffic() throws {
        let probe = Probe()
        let channel = try channel(timeout: .seconds(2), probe)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1500))
        try channel.writeInbound(ByteBuffer(string: "request"))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1500))
        #expect(channel.isActive, "3 s after connecting, but only 1.5 s after the last bytes")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(500))
        #expect(!channel.isActive)
        _ = try channel.readInbound(as: ByteBuffer.self)
    }

    @Test("a connection being served (a long poll) outlasts the timeout, and is closed once it is idle")
    func longPoll() throws {
        let probe = Probe()
        probe.busy.withLock { $0 = true }
        let channel = try channel(timeout: .seconds(2), probe)
        channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        #expect(channel.isActive, "three timeouts passed while the broker was busy with its request")
        probe.busy.withLock { $0 = false }
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)
        #expect(probe.closes.withLock { $0 } == 1)
    }

    @Test("the registry counts a connection as active while busy and for the window after its last answer")
    func registryWindow() throws {
        let registry = ConnectionRegistry()
        let channel = EmbeddedChannel()
        #expect(registry.register(1, channel: channel, limit: 10) == .registered)
        let start = ContinuousClock.now
        #expect(registry.beginRequest(1))
        #expect(registry.isActive(1, within: .seconds(2), now: start + .seconds(60)), "busy: active however long")
        #expect(!registry.endRequest(1, now: start + .seconds(60)))
        #expect(registry.isActive(1, within: .seconds(2), now: start + .seconds(61)))
        #expect(!registry.isActive(1, within: .seconds(2), now: start + .seconds(62)))
        #expect(!registry.isActive(2, within: .seconds(2)), "an unknown connection is not active")
    }
}
