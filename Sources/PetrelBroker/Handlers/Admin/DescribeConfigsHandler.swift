import PetrelProtocol
import PetrelStorage

/// DescribeConfigs (32), v0–4: a topic's configs (every config Kafka defines, with where its value comes
/// from) and the broker's settings under their Kafka names. A resource that cannot be described gets its
/// own error; the others are answered.
struct DescribeConfigsHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...4
    let broker: BrokerState

    func handle(_ request: DescribeConfigsRequest, context: RequestContext) async throws -> DescribeConfigsResponse? {
        let results = request.resources.map { resource in
            describe(resource, synonyms: request.includeSynonyms, documentation: request.includeDocumentation)
        }
        return DescribeConfigsResponse(throttleTimeMs: 0, results: results)
    }

    private func describe(
        _ resource: DescribeConfigsRequest.DescribeConfigsResource,
        synonyms: Bool,
        documentation: Bool
    ) -> DescribeConfigsResponse.DescribeConfigsResult {
        let configs: [DescribedConfig]
        switch TopicConfigChange.ResourceType(rawValue: resource.resourceType) {
        case .topic:
            guard let topic = broker.logs.topic(named: resource.resourceName) else {
                return failure(resource, .unknownTopicOrPartition, "topic \(resource.resourceName) does not exist")
            }
            configs = TopicConfigDescriptions.describe(
                overrides: topic.configOverrides,
                brokerDefaults: broker.configuration.log
            )
        case .broker:
            let nodeID = "\(broker.identity.nodeID)"
            guard resource.resourceName.isEmpty || resource.resourceName == nodeID else {
                return failure(resource, .invalidRequest, "this is broker \(nodeID), not \(resource.resourceName)")
            }
            configs = BrokerConfigDescriptions.describe(broker.configuration, advertised: broker.advertised)
        case nil:
            return failure(resource, .invalidRequest, "resource type \(resource.resourceType) is not described here")
        }
        let wanted = resource.configurationKeys.map(Set.init)
        return .init(
            errorCode: ErrorCode.none,
            errorMessage: nil,
            resourceType: resource.resourceType,
            resourceName: resource.resourceName,
            configs: configs.filter { wanted?.contains($0.name) ?? true }.map {
                wire($0, synonyms: synonyms, documentation: documentation)
            }
        )
    }

    private func wire(
        _ config: DescribedConfig,
        synonyms: Bool,
        documentation: Bool
    ) -> DescribeConfigsResponse.DescribeConfigsResult.DescribeConfigsResourceResult {
        .init(
            name: config.name,
            value: config.value,
            readOnly: config.readOnly,
            isDefault: config.source == .defaultConfig,
            configSource: config.source.rawValue,
            isSensitive: config.isSensitive,
            synonyms: synonyms
                ? config.synonyms.map { .init(name: $0.name, value: $0.value, source: $0.source.rawValue) } : [],
            configType: config.type.rawValue,
            documentation: documentation ? config.documentation : nil
        )
    }

    private func failure(
        _ resource: DescribeConfigsRequest.DescribeConfigsResource,
        _ code: ErrorCode,
        _ message: String
    ) -> DescribeConfigsResponse.DescribeConfigsResult {
        .init(
            errorCode: code,
            errorMessage: message,
            resourceType: resource.resourceType,
            resourceName: resource.resourceName,
            configs: []
        )
    }
}
