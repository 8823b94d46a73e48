import NIOCore
import PetrelProtocol

/// One member of a classic group.
struct GroupMember: Sendable {
    struct SupportedProtocol: Sendable, Hashable {
        var name: String
        var metadata: ByteBuffer
    }

    let memberID: String
    var instanceID: String?
    var clientID: String
    var clientHost: String
    var sessionTimeoutMs: Int32
    var rebalanceTimeoutMs: Int32
    var protocolType: String
    /// In the member's order of preference.
    var protocols: [SupportedProtocol]
    /// What the leader assigned it in the current generation.
    var assignment = ByteBuffer()
    /// The last time it proved it was alive (any group request), ms.
    var lastSeen: Int64
    /// A JoinGroup parked until the join phase completes.
    var joinWaiter: JoinWaiter?
    /// A SyncGroup parked until the leader's assignment arrives.
    var syncWaiter: WaiterID?

    struct JoinWaiter: Sendable {
        var id: WaiterID
        var apiVersion: Int16
    }

    var isStatic: Bool { instanceID != nil }

    func metadata(for protocolName: String?) -> ByteBuffer {
        protocols.first { $0.name == protocolName }?.metadata ?? ByteBuffer()
    }

    /// The topics this member subscribes to under `protocolName`, read from its consumer-protocol
    /// metadata; nil if that metadata is not a consumer subscription (another protocol type, bad bytes).
    func subscribedTopics(protocolName: String?) -> [String]? {
        guard protocolType == "consumer" else { return nil }
        return ConsumerProtocolSubscription(embedded: metadata(for: protocolName))?.topics
    }

    /// Whether this member's protocols (names and metadata) are the same as `other`'s.
    func hasSameProtocols(as other: [SupportedProtocol]) -> Bool {
        protocols == other
    }
}
