import Foundation

/// An order's latest status and when the event that set it happened: the value of the order's record on
/// the status topic, as JSON, e.g. `{"status":"paid","updatedAt":"2025-11-29T10:15:02.120Z"}`.
struct LatestStatus: Codable, Sendable, Hashable {
    var status: OrderStatus
    /// ISO 8601, UTC, with milliseconds.
    var updatedAt: String

    init(status: OrderStatus, updatedAt: String) {
        self.status = status
        self.updatedAt = updatedAt
    }

    /// `timestamp`: milliseconds since the epoch, as Kafka records carry them.
    init(status: OrderStatus, timestamp: Int64) {
        let date = Date(timeIntervalSince1970: Double(timestamp) / 1_000)
        self.init(status: status, updatedAt: Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(date))
    }

    init(json: String) throws {
        self = try JSONDecoder().decode(LatestStatus.self, from: Data(json.utf8))
    }

    func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }
}
