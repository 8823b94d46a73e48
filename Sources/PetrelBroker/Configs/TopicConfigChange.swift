import PetrelProtocol
import PetrelStorage

/// A change to one topic's configs, as AlterConfigs (the whole set) or IncrementalAlterConfigs (per
/// config: SET, DELETE, APPEND, SUBTRACT) ask for it, applied through `LogManager.alterTopicConfigs`.
struct TopicConfigChange {
    /// Why a resource's change was refused: its error code and message.
    struct Refusal: Error {
        var code: ErrorCode
        var message: String
    }

    /// IncrementalAlterConfigs' operations.
    enum Operation: Int8 {
        case set = 0
        case delete = 1
        case append = 2
        case subtract = 3
    }

    let broker: BrokerState

    /// Kafka's ConfigResource types.
    enum ResourceType: Int8 {
        case topic = 2
        case broker = 4
    }

    /// The resource must be a topic: broker settings are fixed while the broker runs.
    func checkTopic(_ type: Int8, _ name: String) throws(Refusal) {
        switch ResourceType(rawValue: type) {
        case .topic: return
        case .broker:
            throw Refusal(
                code: .invalidRequest,
                message: "broker configs are petrel broker settings and cannot change while it runs"
            )
        case nil: throw Refusal(code: .invalidRequest, message: "resource type \(type) has no configs to alter")
        }
    }

    /// AlterConfigs: `configs` become the topic's whole set of overrides.
    func replace(topic: String, with configs: [(String, String?)], validateOnly: Bool) throws(Refusal) {
        var overrides: [String: String] = [:]
        for (name, value) in configs {
            guard overrides[name] == nil else {
                throw Refusal(code: .invalidRequest, message: "\(name) is named twice")
            }
            if let value { overrides[name] = value }
        }
        try apply(topic: topic, overrides: overrides, validateOnly: validateOnly)
    }

    /// IncrementalAlterConfigs: each operation on the topic's current overrides.
    func change(topic: String, _ operations: [(String, Int8, String?)], validateOnly: Bool) throws(Refusal) {
        guard let current = broker.logs.topic(named: topic) else {
            throw Refusal(code: .unknownTopicOrPartition, message: "topic \(topic) does not exist")
        }
        var overrides = current.configOverrides
        var seen: Set<String> = []
        for (name, code, value) in operations {
            guard seen.insert(name).inserted else {
                throw Refusal(code: .invalidRequest, message: "\(name) is named twice")
            }
            guard let operation = Operation(rawValue: code) else {
                throw Refusal(
                    code: .invalidRequest,
                    message: "operation \(code) on \(name) is not SET, DELETE, APPEND or SUBTRACT"
                )
            }
            guard let definition = TopicConfigs.named(name) else {
                throw Refusal(code: .invalidConfig, message: "Kafka defines no topic config \(name)")
            }
            switch operation {
            case .set:
                guard let value else { throw Refusal(code: .invalidRequest, message: "SET \(name) needs a value") }
                overrides[name] = value
            case .delete:
                overrides[name] = nil
            case .append, .subtract:
                guard definition.type == .list else {
                    throw Refusal(
                        code: .invalidConfig,
                        message: "APPEND and SUBTRACT apply to list configs; \(name) is not one"
                    )
                }
                let base = overrides[name] ?? definition.value(defaultingTo: broker.configuration.log)
                var items = base.split(separator: ",").map { String($0.filter { $0 != " " }) }
                let given = (value ?? "").split(separator: ",").map { String($0.filter { $0 != " " }) }
                if operation == .append {
                    items += given.filter { !items.contains($0) }
                } else {
                    items.removeAll { given.contains($0) }
                }
                overrides[name] = items.joined(separator: ",")
            }
        }
        try apply(topic: topic, overrides: overrides, validateOnly: validateOnly)
    }

    private func apply(topic: String, overrides: [String: String], validateOnly: Bool) throws(Refusal) {
        do {
            if try broker.logs.alterTopicConfigs(name: topic, overrides: overrides, validateOnly: validateOnly) {
                broker.metrics.configChanges.increment()
            }
        } catch let error as TopicError {
            switch error {
            case .unknownTopic: throw Refusal(code: .unknownTopicOrPartition, message: "topic \(topic) does not exist")
            case .invalidConfig(let reason): throw Refusal(code: .invalidConfig, message: reason.description)
            default: throw Refusal(code: .unknownServerError, message: "\(error)")
            }
        } catch {
            throw Refusal(code: .kafkaStorageError, message: "\(error)")
        }
    }
}
