import PetrelProtocol
import PetrelStorage

/// CreatePartitions (37), v0–3: grows topics. `count` is the new total; fewer or as many as the topic
/// has is INVALID_PARTITIONS. Assignments, if given, must place each new partition on this broker alone.
struct CreatePartitionsHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...3
    let broker: BrokerState

    func handle(_ request: CreatePartitionsRequest, context: RequestContext) async throws -> CreatePartitionsResponse? {
        var seen: [String: Int] = [:]
        for topic in request.topics { seen[topic.name, default: 0] += 1 }
        let results = request.topics.map { topic in
            if seen[topic.name, default: 0] > 1 {
                return result(topic.name, .invalidRequest, "topic \(topic.name) appears more than once in the request")
            }
            return grow(topic, validateOnly: request.validateOnly, context: context)
        }
        return CreatePartitionsResponse(throttleTimeMs: 0, results: results)
    }

    private func grow(
        _ topic: CreatePartitionsRequest.CreatePartitionsTopic,
        validateOnly: Bool,
        context: RequestContext
    ) -> CreatePartitionsResponse.CreatePartitionsTopicResult {
        let nodeID = broker.identity.nodeID
        guard let current = broker.logs.topic(named: topic.name) else {
            return result(topic.name, .unknownTopicOrPartition, "topic \(topic.name) does not exist")
        }
        // A group's partition of __consumer_offsets depends on the count: it never changes.
        if TopicName.isInternal(topic.name) {
            return result(topic.name, .invalidTopic, "\(topic.name) is an internal topic; its partitions are fixed")
        }
        if let assignments = topic.assignments {
            guard assignments.count == Int(topic.count) - current.partitionCount,
                assignments.allSatisfy({ $0.brokerIds == [nodeID] })
            else {
                return result(
                    topic.name,
                    .invalidReplicaAssignment,
                    "each new partition must be assigned to broker \(nodeID) alone"
                )
            }
        }
        do {
            try broker.logs.addPartitions(name: topic.name, count: Int(topic.count), validateOnly: validateOnly)
            return result(topic.name, .none, nil)
        } catch TopicError.invalidPartitions {
            return result(
                topic.name,
                .invalidPartitions,
                "topic \(topic.name) has \(current.partitionCount) partitions; the new count must be larger, got \(topic.count)"
            )
        } catch TopicError.unknownTopic {
            return result(topic.name, .unknownTopicOrPartition, "topic \(topic.name) does not exist")
        } catch {
            context.logger.error("adding partitions failed", metadata: ["topic": "\(topic.name)", "error": "\(error)"])
            return result(topic.name, .kafkaStorageError, "\(error)")
        }
    }

    private func result(
        _ name: String,
        _ code: ErrorCode,
        _ message: String?
    ) -> CreatePartitionsResponse.CreatePartitionsTopicResult {
        .init(name: name, errorCode: code, errorMessage: message)
    }
}
