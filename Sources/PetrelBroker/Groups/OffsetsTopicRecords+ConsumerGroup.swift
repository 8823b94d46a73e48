import NIOCore
import PetrelProtocol

/// The records a consumer-protocol (KIP-848) group leaves in `__consumer_offsets`, in Kafka's schemas:
/// the group's epoch (ConsumerGroupMetadata, key version 3), each member's subscription
/// (ConsumerGroupMemberMetadata, 5) and each member's current assignment
/// (ConsumerGroupCurrentMemberAssignment, 8). Keys are not flexible; values are (compact strings and
/// arrays, tagged fields). A member that leaves, or a deleted group, gets tombstones.
extension OffsetsTopicRecord {
    static let consumerGroupMetadataKeyVersion: Int16 = 3
    static let consumerGroupMemberMetadataKeyVersion: Int16 = 5
    static let consumerGroupCurrentAssignmentKeyVersion: Int16 = 8

    static func consumerGroupMetadataKey(group: String) -> ByteBuffer {
        var key = ByteBuffer()
        key.writeInteger(consumerGroupMetadataKeyVersion)
        key.writeKafkaString(group, flexible: false)
        return key
    }

    static func consumerGroupMemberMetadataKey(group: String, member: String) -> ByteBuffer {
        memberKey(consumerGroupMemberMetadataKeyVersion, group: group, member: member)
    }

    static func consumerGroupCurrentAssignmentKey(group: String, member: String) -> ByteBuffer {
        memberKey(consumerGroupCurrentAssignmentKeyVersion, group: group, member: member)
    }

    private static func memberKey(_ version: Int16, group: String, member: String) -> ByteBuffer {
        var key = ByteBuffer()
        key.writeInteger(version)
        key.writeKafkaString(group, flexible: false)
        key.writeKafkaString(member, flexible: false)
        return key
    }

    /// ConsumerGroupMetadataValue v0: the group epoch.
    static func consumerGroupMetadataValue(epoch: Int32) -> ByteBuffer {
        var value = ByteBuffer()
        value.writeInteger(Int16(0))
        value.writeInteger(epoch)
        value.writeEmptyKafkaTaggedFields()
        return value
    }

    /// ConsumerGroupMemberMetadataValue v0: who the member is and what it subscribes to.
    static func consumerGroupMemberMetadataValue(_ member: ConsumerGroup.Member) -> ByteBuffer {
        var value = ByteBuffer()
        value.writeInteger(Int16(0))
        value.writeKafkaNullableString(member.instanceID, flexible: true)
        value.writeKafkaNullableString(nil, flexible: true)  // rack id
        value.writeKafkaString(member.clientID, flexible: true)
        value.writeKafkaString(member.clientHost, flexible: true)
        value.writeKafkaArray(member.subscribedTopics, flexible: true) { $0.writeKafkaString($1, flexible: true) }
        value.writeKafkaNullableString(member.subscribedRegex, flexible: true)
        value.writeInteger(member.rebalanceTimeoutMs)
        value.writeKafkaNullableString(member.assignor?.rawValue, flexible: true)
        value.writeEmptyKafkaTaggedFields()
        return value
    }

    /// ConsumerGroupCurrentMemberAssignmentValue v0: the member's epochs, state (0 stable, 1 revoking)
    /// and its partitions by topic id, owned and being revoked.
    static func consumerGroupCurrentAssignmentValue(
        _ member: ConsumerGroup.Member,
        topicIDs: (String) -> KafkaUUID?
    ) -> ByteBuffer {
        var value = ByteBuffer()
        value.writeInteger(Int16(0))
        value.writeInteger(member.memberEpoch)
        value.writeInteger(member.previousMemberEpoch)
        value.writeInteger(Int8(member.revoking.isEmpty ? 0 : 1))
        for partitions in [member.assigned, member.revoking] {
            let byTopic = partitions.groupedByTopic().compactMap { topic, indexes in
                topicIDs(topic).map { ($0, indexes) }
            }
            value.writeKafkaArray(byTopic, flexible: true) { buffer, entry in
                buffer.writeKafkaUUID(entry.0)
                buffer.writeKafkaArray(entry.1, flexible: true) { $0.writeInteger($1) }
                buffer.writeEmptyKafkaTaggedFields()
            }
        }
        value.writeEmptyKafkaTaggedFields()
        return value
    }
}
