import PetrelStorage

/// Where a config's value comes from (Kafka's DescribeConfigsResponse.ConfigSource).
enum ConfigSource: Int8, Sendable {
    case unknown = 0
    case topic = 1
    case dynamicBroker = 2
    case dynamicDefaultBroker = 3
    case staticBroker = 4
    case defaultConfig = 5
}

/// One config as DescribeConfigs reports it, before it is put in the version's wire form.
struct DescribedConfig: Sendable {
    struct Synonym: Sendable {
        var name: String
        var value: String?
        var source: ConfigSource
    }

    var name: String
    var value: String?
    var source: ConfigSource
    var readOnly: Bool
    var isSensitive = false
    var type: ConfigType
    var documentation: String
    /// Where else the value could come from, most specific first (the value in force first).
    var synonyms: [Synonym]
}
