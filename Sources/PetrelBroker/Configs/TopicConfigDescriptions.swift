import PetrelStorage

/// A topic's configs as DescribeConfigs (and CreateTopics v5+) report them: every config Kafka defines,
/// from the topic's override if it has one, else from the broker's setting or Kafka's default.
enum TopicConfigDescriptions {
    /// Broker settings of `petrel broker` that give these topic configs their defaults.
    private static let fromBrokerSettings: Set<String> = [
        "retention.ms", "retention.bytes", "segment.bytes", "segment.ms", "index.interval.bytes",
        "max.message.bytes", "flush.ms", "flush.policy",
    ]

    static func describe(overrides: [String: String], brokerDefaults: LogConfig) -> [DescribedConfig] {
        TopicConfigs.all.map { definition in
            let inherited = definition.value(defaultingTo: brokerDefaults)
            let inheritedSource: ConfigSource =
                fromBrokerSettings.contains(definition.name) ? .staticBroker : .defaultConfig
            var synonyms: [DescribedConfig.Synonym] = []
            if let override = overrides[definition.name] {
                synonyms.append(.init(name: definition.name, value: override, source: .topic))
            }
            if inheritedSource == .staticBroker, let broker = definition.brokerSynonym {
                synonyms.append(.init(name: broker, value: inherited, source: .staticBroker))
            } else {
                synonyms.append(
                    .init(name: definition.brokerSynonym ?? definition.name, value: inherited, source: .defaultConfig)
                )
            }
            return DescribedConfig(
                name: definition.name,
                value: overrides[definition.name] ?? inherited,
                source: overrides[definition.name] == nil ? inheritedSource : .topic,
                readOnly: false,
                type: definition.type,
                documentation: definition.documentation,
                synonyms: synonyms
            )
        }
    }
}
