import PetrelProtocol

/// One member of a consumer-protocol group (KIP-848, Kafka's group.protocol=consumer) as the client sees
/// it, without sockets or clocks. The broker owns the assignment: a heartbeat's answer may carry the
/// member's whole assignment (topics by id), which the member reaches step by step. It gives up the
/// partitions no longer in it, takes the new ones and keeps fetching the rest; its next heartbeat says
/// what it owns now, and that lets the broker hand what it gave up to others. No stop-the-world
/// rebalance. Events go in as methods, `nextAction(now:)` says what to do; time is `now`, in ms, so tests
/// drive it with a fake clock. Not thread-safe: it lives in `ConsumerStateMachine`, behind its lock.
struct ConsumerProtocolMembership {
    struct Settings: Sendable, Hashable {
        var groupID: String
        var topics: [String]
        /// Static membership (group.instance.id).
        var instanceID: String?
        /// group.remote.assignor; nil lets the broker choose.
        var serverAssignor: String?
        var rebalanceTimeoutMs: Int32
        /// The first pause after a failed heartbeat; it doubles up to 5 s.
        var retryBackoffMs: Int64
    }

    enum Action: Hashable {
        /// Send `heartbeat(version:)` to the coordinator; report with `received` or `heartbeatFailed`.
        case heartbeat
        /// Look up the names of these topic ids (Metadata), then `learn` them.
        case resolveTopics(Set<KafkaUUID>)
        /// Give up `revoke` (committing first, with auto-commit), then take `assign` from their committed
        /// offsets; report with `revoked`, `assigned` or `assignmentFailed`.
        case reconcile(revoke: Set<TopicPartition>, assign: Set<TopicPartition>)
        /// Drop these without committing (they may be another member's by now), then `lost()`.
        case lose(Set<TopicPartition>)
        /// Nothing to do before this time.
        case wait(until: Int64)
        /// The consumer cannot be a member of the group: it fails with this error.
        case fail(KafkaClientError)
    }

    /// What a heartbeat's answer means for the loop that sent it.
    enum Outcome: Hashable {
        case accepted
        /// Fenced or forgotten by the group: the partitions are lost, the member joins again.
        case fenced(ErrorCode)
        /// Find the coordinator again; the heartbeat is retried after a backoff.
        case coordinatorLost(ErrorCode)
        case retrying(ErrorCode)
        /// The next action is `fail`.
        case fatal(ErrorCode)
    }

    static let leaveEpoch: Int32 = -1
    static let staticLeaveEpoch: Int32 = -2

    let settings: Settings
    /// Used from ConsumerGroupHeartbeat v1 on, where the client names itself (KIP-1082); at v0 the
    /// broker names the member in its answer to the join.
    private let clientMemberID: String
    private(set) var memberID = ""
    private(set) var memberEpoch: Int32 = 0
    /// Until the broker names it (its group.consumer.heartbeat.interval.ms).
    private(set) var heartbeatIntervalMs: Int64 = 5_000
    /// The partitions the consumer holds now.
    private(set) var owned: Set<TopicPartition> = []
    /// A join was answered: there is a membership to leave.
    private(set) var hasJoined = false
    /// Heartbeats answered or failed so far: a commit refused for a stale epoch waits for the next.
    private(set) var heartbeatsCompleted: UInt64 = 0

    /// The latest assignment the broker sent, by topic id: where reconciliation heads.
    private var assignment: [KafkaUUID: Set<Int32>] = [:]
    private var topicNames: [KafkaUUID: String] = [:]
    private var topicIDs: [String: KafkaUUID] = [:]
    /// When unknown topic ids may be looked up again.
    private var nextResolve: Int64 = 0
    /// When partitions whose taking failed may be tried again.
    private var nextAssignAttempt: Int64 = 0
    /// What the broker last heard the member owns; nil: tell it on the next heartbeat.
    private var reportedOwned: Set<TopicPartition>?
    /// Every field goes out on a join and after a failed heartbeat (the broker may not have seen the last).
    private var sendAllFields = true
    private var nextHeartbeat: Int64 = 0
    private var inFlight: (owned: Set<TopicPartition>?, allFields: Bool)?
    private var consecutiveFailures = 0
    private var mustLose = false
    private var failure: KafkaClientError?

    init(settings: Settings, clientMemberID: String) {
        self.settings = settings
        self.clientMemberID = clientMemberID
    }

    /// The assignment's partitions whose topic names are known.
    var target: Set<TopicPartition> {
        assignment.reduce(into: []) { result, entry in
            guard let name = topicNames[entry.key] else { return }
            result.formUnion(entry.value.map { TopicPartition(name, $0) })
        }
    }

    // MARK: - What to do

    mutating func nextAction(now: Int64) -> Action {
        if let failure { return .fail(failure) }
        if inFlight != nil { return .wait(until: nextHeartbeat) }
        if mustLose { return .lose(owned) }
        let unknown = Set(assignment.keys).subtracting(topicNames.keys)
        if !unknown.isEmpty && now >= nextResolve {
            nextResolve = now + heartbeatIntervalMs
            return .resolveTopics(unknown)
        }
        // Partitions whose topic id is still unknown cannot be owned ones: owned ids are always known,
        // so reconciling the known part never revokes wrongly.
        let target = target
        let revoke = owned.subtracting(target)
        let assign = now >= nextAssignAttempt ? target.subtracting(owned) : []
        if !revoke.isEmpty || !assign.isEmpty { return .reconcile(revoke: revoke, assign: assign) }
        // A changed assignment is acknowledged at once, so the broker can move what was given up.
        let acknowledge = consecutiveFailures == 0 && reportedOwned != owned
        if now >= nextHeartbeat || acknowledge { return .heartbeat }
        var wake = nextHeartbeat
        if !unknown.isEmpty { wake = min(wake, nextResolve) }
        if !target.subtracting(owned).isEmpty { wake = min(wake, nextAssignAttempt) }
        return .wait(until: wake)
    }

    /// The heartbeat to send now, at `version` (negotiated with the coordinator); it is in flight until
    /// `received` or `heartbeatFailed`.
    mutating func heartbeat(version: Int16) -> ConsumerGroupHeartbeatRequest {
        if memberID.isEmpty && version >= 1 { memberID = clientMemberID }
        let allFields = sendAllFields || memberEpoch == 0
        var request = ConsumerGroupHeartbeatRequest(
            groupId: settings.groupID,
            memberId: memberID,
            memberEpoch: memberEpoch,
            instanceId: settings.instanceID,
            rebalanceTimeoutMs: -1
        )
        if allFields {
            request.rebalanceTimeoutMs = settings.rebalanceTimeoutMs
            request.subscribedTopicNames = settings.topics.sorted()
            request.serverAssignor = settings.serverAssignor
        }
        var ownedSent: Set<TopicPartition>?
        if allFields || reportedOwned != owned {
            request.topicPartitions = owned.groupedByTopic().compactMap { topic, partitions in
                topicIDs[topic].map { .init(topicId: $0, partitions: partitions) }
            }
            ownedSent = owned
        }
        inFlight = (ownedSent, allFields)
        return request
    }

    // MARK: - Heartbeat answers

    mutating func received(_ response: ConsumerGroupHeartbeatResponse, now: Int64) -> Outcome {
        let sent = inFlight
        inFlight = nil
        heartbeatsCompleted += 1
        let code = response.errorCode
        switch code {
        case .none:
            consecutiveFailures = 0
            hasJoined = true
            if let id = response.memberId, !id.isEmpty { memberID = id }
            memberEpoch = response.memberEpoch
            if response.heartbeatIntervalMs > 0 { heartbeatIntervalMs = Int64(response.heartbeatIntervalMs) }
            if let owned = sent?.owned { reportedOwned = owned }
            if sent?.allFields == true { sendAllFields = false }
            if let assigned = response.assignment {
                assignment = assigned.topicPartitions.reduce(into: [:]) {
                    $0[$1.topicId, default: []].formUnion($1.partitions)
                }
                nextResolve = now
                nextAssignAttempt = now
            }
            nextHeartbeat = now + heartbeatIntervalMs
            return .accepted
        case .fencedMemberEpoch, .unknownMemberID:
            // Joins again at epoch 0 under the same id: a new id would leave the old member holding its
            // partitions at the broker until its session ends.
            memberEpoch = 0
            assignment = [:]
            mustLose = !owned.isEmpty
            reportedOwned = nil
            sendAllFields = true
            consecutiveFailures = 0
            nextHeartbeat = now
            return .fenced(code)
        case .notCoordinator, .coordinatorNotAvailable, .coordinatorLoadInProgress:
            retryLater(now: now)
            return .coordinatorLost(code)
        case .unreleasedInstanceID, .unsupportedAssignor, .groupMaxSizeReached, .inconsistentGroupProtocol,
            .invalidRequest:
            failure = .broker(code, message: explanation(of: code, broker: response.errorMessage))
            return .fatal(code)
        default:
            guard code.isRetriable else {
                failure = .broker(code, message: explanation(of: code, broker: response.errorMessage))
                return .fatal(code)
            }
            retryLater(now: now)
            return .retrying(code)
        }
    }

    /// The heartbeat got no answer (connection lost, timed out, no coordinator).
    mutating func heartbeatFailed(now: Int64) {
        if inFlight != nil { heartbeatsCompleted += 1 }
        inFlight = nil
        retryLater(now: now)
    }

    private mutating func retryLater(now: Int64) {
        consecutiveFailures += 1
        sendAllFields = true
        reportedOwned = nil
        let doublings = min(consecutiveFailures - 1, 16)
        nextHeartbeat = now + min(settings.retryBackoffMs << doublings, max(5_000, settings.retryBackoffMs))
    }

    private func explanation(of code: ErrorCode, broker: String?) -> String {
        let group = settings.groupID
        let reason =
            switch code {
            case .unreleasedInstanceID:
                "another member of group \(group) still holds instance id \(settings.instanceID ?? "")"
            case .unsupportedAssignor: "the broker has no server assignor named \(settings.serverAssignor ?? "")"
            case .groupMaxSizeReached: "group \(group) has as many members as the broker allows"
            case .inconsistentGroupProtocol: "group \(group) is in use with the classic protocol"
            case .invalidRequest: "the broker refused the heartbeat for group \(group) as invalid"
            default: "the broker refused membership of group \(group)"
            }
        return broker.map { "\(reason) (\($0))" } ?? reason
    }

    // MARK: - Reconciliation

    /// Topic names for ids (from Metadata); ids of zero are ignored.
    mutating func learn(_ topics: [String: KafkaUUID]) {
        for (name, id) in topics where id != .zero {
            topicNames[id] = name
            topicIDs[name] = id
        }
    }

    mutating func revoked(_ partitions: Set<TopicPartition>) {
        owned.subtract(partitions)
    }

    /// Partitions the consumer now fetches; returns those taken (the assignment may have moved on).
    mutating func assigned(_ partitions: Set<TopicPartition>) -> Set<TopicPartition> {
        let taken = partitions.intersection(target).subtracting(owned)
        owned.formUnion(taken)
        return taken
    }

    /// Taking partitions failed (no committed offsets, say): try again after a backoff.
    mutating func assignmentFailed(now: Int64) {
        nextAssignAttempt = now + settings.retryBackoffMs
    }

    /// The partitions of a fenced member are gone.
    mutating func lost() {
        owned = []
        mustLose = false
    }

    // MARK: - Leaving

    /// The heartbeat that leaves the group (epoch -1; -2 for a static member, whose partitions wait for it
    /// until its session ends); nil if there is no membership to leave.
    func leaveRequest() -> ConsumerGroupHeartbeatRequest? {
        guard hasJoined, !memberID.isEmpty else { return nil }
        return ConsumerGroupHeartbeatRequest(
            groupId: settings.groupID,
            memberId: memberID,
            memberEpoch: settings.instanceID == nil ? Self.leaveEpoch : Self.staticLeaveEpoch,
            instanceId: settings.instanceID,
            rebalanceTimeoutMs: -1
        )
    }

    mutating func left() {
        hasJoined = false
        memberEpoch = Self.leaveEpoch
    }
}
