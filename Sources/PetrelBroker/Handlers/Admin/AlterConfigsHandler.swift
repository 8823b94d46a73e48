import PetrelProtocol
import PetrelStorage

/// AlterConfigs (33), v0–2: replaces a topic's whole set of config overrides (those not named go back
/// to their defaults), durably and in force at once; `validate_only` only checks.
struct AlterConfigsHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...2
    let broker: BrokerState

    func handle(_ request: AlterConfigsRequest, context: RequestContext) async throws -> AlterConfigsResponse? {
        let change = TopicConfigChange(broker: broker)
        let responses = request.resources.map { resource in
            do throws(TopicConfigChange.Refusal) {
                try change.checkTopic(resource.resourceType, resource.resourceName)
                try change.replace(
                    topic: resource.resourceName,
                    with: resource.configs.map { ($0.name, $0.value) },
                    validateOnly: request.validateOnly
                )
                return AlterConfigsResponse.AlterConfigsResourceResponse(
                    errorCode: ErrorCode.none,
                    errorMessage: nil,
                    resourceType: resource.resourceType,
                    resourceName: resource.resourceName
                )
            } catch {
                return .init(
                    errorCode: error.code,
                    errorMessage: error.message,
                    resourceType: resource.resourceType,
                    resourceName: resource.resourceName
                )
            }
        }
        return AlterConfigsResponse(throttleTimeMs: 0, responses: responses)
    }
}
