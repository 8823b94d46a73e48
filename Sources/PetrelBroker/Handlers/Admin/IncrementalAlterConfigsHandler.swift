import PetrelProtocol
import PetrelStorage

/// IncrementalAlterConfigs (44), v0–1: SET, DELETE (back to the default), APPEND and SUBTRACT (list
/// configs) on a topic's configs, durably and in force at once; `validate_only` only checks.
struct IncrementalAlterConfigsHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...1
    let broker: BrokerState

    func handle(
        _ request: IncrementalAlterConfigsRequest,
        context: RequestContext
    ) async throws -> IncrementalAlterConfigsResponse? {
        let change = TopicConfigChange(broker: broker)
        let responses = request.resources.map { resource in
            do throws(TopicConfigChange.Refusal) {
                try change.checkTopic(resource.resourceType, resource.resourceName)
                try change.change(
                    topic: resource.resourceName,
                    resource.configs.map { ($0.name, $0.configOperation, $0.value) },
                    validateOnly: request.validateOnly
                )
                return IncrementalAlterConfigsResponse.AlterConfigsResourceResponse(
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
        return IncrementalAlterConfigsResponse(throttleTimeMs: 0, responses: responses)
    }
}
