import Logging

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// swift-log handler writing one JSON object per line to standard error:
/// `{"time":…,"level":…,"label":…,"message":…,"source":…,` then the metadata as string fields.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, logLevel: Logger.Level) {
        self.label = label
        self.logLevel = logLevel
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let time = Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        var fields: [(String, String)] = [
            ("time", time), ("level", "\(event.level)"), ("label", label), ("message", "\(event.message)"),
            ("source", event.source),
        ]
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) { fields.append((key, "\(value)")) }
        if let error = event.error { fields.append(("error", "\(error)")) }
        writeToStandardError(JSONLine.encode(fields.map { ($0.0, .string($0.1)) }) + "\n")
    }
}
