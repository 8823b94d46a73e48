import PetrelProtocol
import PetrelStorage

/// DeleteTopics (20): by name (v0–5) or by name or topic id (v6).
struct DeleteTopicsHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...6
    let broker: BrokerState

    func handle(_ request: DeleteTopicsRequest, context: RequestContext) async throws -> DeleteTopicsResponse? {
        let targets: [(name: String?, id: KafkaUUID)] =
            context.apiVersion >= 6
            ? request.topics.map { ($0.name, $0.topicId) } : request.topicNames.map { ($0, .zero) }
        var results: [DeleteTopicsResponse.DeletableTopicResult] = []
        for target in targets {
            let result = delete(name: target.name, id: target.id, context: context)
            if result.errorCode == ErrorCode.none, let name = result.name {
                // Offsets committed for a topic that no longer exists would only confuse a topic created later.
                do {
                    try await broker.groups.offsets.deleteTopic(name)
                } catch {
                    context.logger.error(
                        "removing a deleted topic's offsets failed",
                        metadata: ["topic": "\(name)", "error": "\(error)"]
                    )
                }
            }
            results.append(result)
        }
        return DeleteTopicsResponse(throttleTimeMs: 0, responses: results)
    }

    private func delete(
        name: String?,
        id: KafkaUUID,
        context: RequestContext
    ) -> DeleteTopicsResponse.DeletableTopicResult {
        let resolved = name ?? broker.logs.allTopics.first(where: { $0.id == id })?.name
        guard let resolved else {
            return .init(
                name: nil,
                topicId: id,
                errorCode: ErrorCode.unknownTopicID,
                errorMessage: "no topic has id \(id)"
            )
        }
        if TopicName.isInternal(resolved) {
            return .init(
                name: resolved,
                topicId: id,
                errorCode: ErrorCode.invalidTopic,
                errorMessage: "\(resolved) is an internal topic: it holds the committed offsets"
            )
        }
        do {
            let deleted = try broker.logs.deleteTopic(name: resolved)
            return .init(name: resolved, topicId: deleted.id, errorCode: ErrorCode.none)
        } catch TopicError.unknownTopic {
            return .init(
                name: resolved,
                topicId: id,
                errorCode: ErrorCode.unknownTopicOrPartition,
                errorMessage: "topic \(resolved) does not exist"
            )
        } catch {
            context.logger.error("deleting a topic failed", metadata: ["topic": "\(resolved)", "error": "\(error)"])
            return .init(name: resolved, topicId: id, errorCode: ErrorCode.kafkaStorageError, errorMessage: "\(error)")
        }
    }
}
