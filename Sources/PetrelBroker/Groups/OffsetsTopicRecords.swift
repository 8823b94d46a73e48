import NIOCore
import PetrelProtocol

/// The records of `__consumer_offsets`, in Kafka's own schemas (its group coordinator's
/// OffsetCommitKey/Value and GroupMetadataKey/Value), so that tools reading the topic (Burrow, console
/// consumers) understand them. Keys and values start with an int16 version; the key's version says
/// what the record is. All fields are big-endian; strings are an int16 length and UTF-8.
enum OffsetsTopicRecord {
    /// What a key names.
    enum Key: Hashable {
        /// Key versions 0 and 1: a group's committed offset for one partition.
        case offsetCommit(group: String, partition: TopicPartition)
        /// Key version 2: a classic group's metadata.
        case groupMetadata(group: String)
        /// Another record type (KIP-848's, share groups'): kept by compaction, not read by this broker.
        case other(version: Int16)
    }

    static let offsetCommitKeyVersion: Int16 = 1
    static let groupMetadataKeyVersion: Int16 = 2
    /// The value version Kafka writes for commits without an expiry: with the leader epoch.
    static let offsetCommitValueVersion: Int16 = 3
    /// The value version Kafka writes for groups: members carry their group instance id.
    static let groupMetadataValueVersion: Int16 = 3

    // MARK: - Keys

    static func offsetCommitKey(group: String, _ partition: TopicPartition) -> ByteBuffer {
        var key = ByteBuffer()
        key.writeInteger(offsetCommitKeyVersion)
        key.writeKafkaString(group, flexible: false)
        key.writeKafkaString(partition.topic, flexible: false)
        key.writeInteger(partition.partition)
        return key
    }

    static func groupMetadataKey(group: String) -> ByteBuffer {
        var key = ByteBuffer()
        key.writeInteger(groupMetadataKeyVersion)
        key.writeKafkaString(group, flexible: false)
        return key
    }

    static func decodeKey(_ key: inout ByteBuffer) throws -> Key {
        let version: Int16 = try key.readKafkaInteger()
        switch version {
        case 0, 1:
            let group = try key.readKafkaString(flexible: false)
            let topic = try key.readKafkaString(flexible: false)
            return .offsetCommit(group: group, partition: TopicPartition(topic, try key.readKafkaInteger()))
        case 2:
            return .groupMetadata(group: try key.readKafkaString(flexible: false))
        default:
            return .other(version: version)
        }
    }

    // MARK: - Offset commit values

    /// Version 3. Kafka's metadata is a non-null string: no metadata is the empty string.
    static func offsetCommitValue(_ committed: CommittedOffset) -> ByteBuffer {
        var value = ByteBuffer()
        value.writeInteger(offsetCommitValueVersion)
        value.writeInteger(committed.offset)
        value.writeInteger(committed.leaderEpoch)
        value.writeKafkaString(committed.metadata ?? "", flexible: false)
        value.writeInteger(committed.commitTimestamp)
        return value
    }

    /// Any version Kafka has written: 0 (offset, metadata, commit time), 1 (and an expiry), 2 (as 0),
    /// 3 (with the leader epoch) and 4 (3, flexible).
    static func decodeOffsetCommitValue(_ value: inout ByteBuffer) throws -> CommittedOffset {
        let version: Int16 = try value.readKafkaInteger()
        guard (0...4).contains(version) else {
            throw ProtocolError(.invalidValue, "offset commit value version \(version)")
        }
        let offset: Int64 = try value.readKafkaInteger()
        let leaderEpoch: Int32 = version >= 3 ? try value.readKafkaInteger() : -1
        let metadata = try value.readKafkaString(flexible: version >= 4)
        let commitTimestamp: Int64 = try value.readKafkaInteger()
        return CommittedOffset(
            offset: offset,
            leaderEpoch: leaderEpoch,
            metadata: metadata,
            commitTimestamp: commitTimestamp
        )
    }

    // MARK: - Group metadata values

    /// A classic group as Kafka records it when it stabilizes or empties.
    struct GroupMetadata: Hashable {
        struct Member: Hashable {
            var memberID: String
            var groupInstanceID: String?
            var clientID: String
            var clientHost: String
            var rebalanceTimeoutMs: Int32
            var sessionTimeoutMs: Int32
            var subscription: [UInt8]
            var assignment: [UInt8]
        }

        var protocolType: String
        var generation: Int32
        var protocolName: String?
        var leader: String?
        var currentStateTimestamp: Int64
        var members: [Member]
    }

    /// Version 3.
    static func groupMetadataValue(_ group: GroupMetadata) -> ByteBuffer {
        var value = ByteBuffer()
        value.writeInteger(groupMetadataValueVersion)
        value.writeKafkaString(group.protocolType, flexible: false)
        value.writeInteger(group.generation)
        value.writeKafkaNullableString(group.protocolName, flexible: false)
        value.writeKafkaNullableString(group.leader, flexible: false)
        value.writeInteger(group.currentStateTimestamp)
        value.writeInteger(Int32(group.members.count))
        for member in group.members {
            value.writeKafkaString(member.memberID, flexible: false)
            value.writeKafkaNullableString(member.groupInstanceID, flexible: false)
            value.writeKafkaString(member.clientID, flexible: false)
            value.writeKafkaString(member.clientHost, flexible: false)
            value.writeInteger(member.rebalanceTimeoutMs)
            value.writeInteger(member.sessionTimeoutMs)
            value.writeKafkaBytes(ByteBuffer(bytes: member.subscription), flexible: false)
            value.writeKafkaBytes(ByteBuffer(bytes: member.assignment), flexible: false)
        }
        return value
    }

    /// Versions 0–3 (4 is flexible and not written by Kafka for classic groups).
    static func decodeGroupMetadataValue(_ value: inout ByteBuffer) throws -> GroupMetadata {
        let version: Int16 = try value.readKafkaInteger()
        guard (0...3).contains(version) else {
            throw ProtocolError(.invalidValue, "group metadata value version \(version)")
        }
        var group = GroupMetadata(
            protocolType: try value.readKafkaString(flexible: false),
            generation: try value.readKafkaInteger(),
            protocolName: try value.readKafkaNullableString(flexible: false),
            leader: try value.readKafkaNullableString(flexible: false),
            currentStateTimestamp: version >= 2 ? try value.readKafkaInteger() : -1,
            members: []
        )
        let count: Int32 = try value.readKafkaInteger()
        guard count >= 0, Int(count) <= value.readableBytes else {
            throw ProtocolError(.invalidValue, "group metadata member count \(count)")
        }
        for _ in 0..<count {
            let memberID = try value.readKafkaString(flexible: false)
            let instanceID = version >= 3 ? try value.readKafkaNullableString(flexible: false) : nil
            let clientID = try value.readKafkaString(flexible: false)
            let clientHost = try value.readKafkaString(flexible: false)
            let rebalanceTimeout: Int32 = version >= 1 ? try value.readKafkaInteger() : -1
            let sessionTimeout: Int32 = try value.readKafkaInteger()
            let subscription = try value.readKafkaBytes(flexible: false)
            let assignment = try value.readKafkaBytes(flexible: false)
            group.members.append(
                .init(
                    memberID: memberID,
                    groupInstanceID: instanceID,
                    clientID: clientID,
                    clientHost: clientHost,
                    rebalanceTimeoutMs: rebalanceTimeout,
                    sessionTimeoutMs: sessionTimeout,
                    subscription: Array(buffer: subscription),
                    assignment: Array(buffer: assignment)
                )
            )
        }
        return group
    }

    // MARK: - Partitioning

    /// The partition of `__consumer_offsets` holding a group, as Kafka chooses it: the absolute value of
    /// Java's `String.hashCode` of the group id (Kafka's `Utils.abs`: `Int32.min` counts as 0), modulo the
    /// partition count.
    static func partition(ofGroup group: String, partitionCount: Int) -> Int32 {
        var hash: Int32 = 0
        for unit in group.utf16 { hash = hash &* 31 &+ Int32(unit) }
        let magnitude = hash == .min ? 0 : Int(hash.magnitude)
        return Int32(magnitude % partitionCount)
    }
}
