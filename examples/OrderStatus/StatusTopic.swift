import Logging
import PetrelClient
import PetrelProtocol

/// The compacted topic the statuses live on: created at start-up if it is missing, with
/// cleanup.policy=compact and whatever other configs were asked for.
struct StatusTopic: Sendable {
    var name: String
    /// Topic configs for a topic created here (e.g. segment.bytes); cleanup.policy defaults to compact.
    var configs: [String: String]

    func createIfMissing(with admin: KafkaAdmin, logger: Logger) async throws {
        let configs = self.configs.merging(["cleanup.policy": "compact"]) { given, _ in given }
        do {
            try await admin.createTopic(name, configs: configs)
            let described = configs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            logger.info(
                "created the status topic",
                metadata: ["topic": "\(name)", "configs": "\(described.joined(separator: ","))"]
            )
        } catch let error as KafkaClientError where error.errorCode == .topicAlreadyExists {
            let policy = try await admin.topicConfigs(name).first { $0.name == "cleanup.policy" }?.value ?? "delete"
            if !policy.split(separator: ",").contains("compact") {
                logger.warning(
                    "the status topic is not compacted: it keeps every update, not only each order's latest",
                    metadata: ["topic": "\(name)", "cleanup.policy": "\(policy)"]
                )
            }
        }
    }
}
