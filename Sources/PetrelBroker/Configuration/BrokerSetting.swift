import Logging

/// One operator setting of `petrel broker`. The same name is the command-line flag (`--segment-bytes`),
/// the config-file key (`segment-bytes = 65536`) and, upper-cased with a `PETREL_` prefix, the
/// environment variable (`PETREL_SEGMENT_BYTES`).
public struct BrokerSetting: Sendable {
    public let name: String
    /// The value used when no flag, variable or file sets it, as an operator would write it.
    public let defaultValue: String
    public let summary: String
    let apply: @Sendable (inout ResolvedBrokerSettings, String, _ isDefault: Bool) throws -> Void

    public var environmentVariable: String {
        "PETREL_" + String(name.uppercased().map { $0 == "-" ? "_" : $0 })
    }

    public var flag: String { "--" + name }
}

/// What the settings resolve to: the broker's configuration and how the process logs.
public struct ResolvedBrokerSettings: Sendable {
    public var broker: BrokerConfiguration
    public var logLevel: Logger.Level
    public var logFormat: LogFormat

    public init(
        broker: BrokerConfiguration = BrokerConfiguration(),
        logLevel: Logger.Level = .info,
        logFormat: LogFormat = .text
    ) {
        self.broker = broker
        self.logLevel = logLevel
        self.logFormat = logFormat
    }
}

/// How log lines are written to standard error.
public enum LogFormat: String, Sendable, CaseIterable {
    /// swift-log's default: timestamp, level, label, metadata, message.
    case text
    /// One JSON object per line, for log collectors.
    case json
}

/// A setting's value that cannot be used, and where it came from.
public struct BrokerSettingError: Error, CustomStringConvertible, Sendable {
    public var setting: String
    public var value: String
    public var reason: String
    /// "--segment-bytes", "PETREL_SEGMENT_BYTES" or "petrel.conf line 3".
    public var source: String

    public var description: String { "\(source): \(setting) \(reason), got '\(value)'." }
}
