import PetrelProtocol

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The broker's identity, kept in `<data>/meta.properties` so it survives restarts: the cluster id
/// clients see in Metadata and the node id.
public struct BrokerIdentity: Sendable, Hashable {
    public var clusterID: String
    public var nodeID: Int32

    /// Reads the identity from the data directory, creating it on first start.
    public static func loadOrCreate(directory: String, nodeID: Int32 = 1) throws -> BrokerIdentity {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/meta.properties"
        if let properties = try PropertiesFile.read(path), let cluster = properties["cluster.id"],
            let node = properties["node.id"].flatMap({ Int32($0) })
        {
            return BrokerIdentity(clusterID: cluster, nodeID: node)
        }
        let identity = BrokerIdentity(clusterID: KafkaUUID.random().description, nodeID: nodeID)
        try PropertiesFile.write(
            [("version", "1"), ("cluster.id", identity.clusterID), ("node.id", String(identity.nodeID))],
            to: path
        )
        return identity
    }
}
