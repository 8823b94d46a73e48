import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The event the example services exchange, as JSON on the `orders` topic, keyed by order id.
public struct OrderEvent: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable {
        case created = "OrderCreated"
        case paid = "OrderPaid"
        case shipped = "OrderShipped"
    }

    /// Unique per event: what an idempotent consumer de-duplicates by (also in the `event-id` header).
    public var eventID: String
    public var kind: Kind
    public var orderID: String
    public var customer: String
    /// 1, 2, 3, ... per order: a consumer can tell whether an order's events arrived in order.
    public var sequence: Int
    public var totalCents: Int

    public init(eventID: String, kind: Kind, orderID: String, customer: String, sequence: Int, totalCents: Int) {
        self.eventID = eventID
        self.kind = kind
        self.orderID = orderID
        self.customer = customer
        self.sequence = sequence
        self.totalCents = totalCents
    }

    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    public init(json: String) throws {
        self = try JSONDecoder().decode(OrderEvent.self, from: Data(json.utf8))
    }
}

/// Appends lines to a file, each with one O_APPEND write, so several workers can share the file and
/// what a killed worker wrote before dying is there.
public final class AppendOnlyFile: Sendable {
    private let descriptor: Int32
    public let path: String

    public init(path: String) throws {
        self.path = path
        descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path]) }
    }

    deinit {
        close(descriptor)
    }

    public func append(_ line: String) {
        var bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeMutableBytes { write(descriptor, $0.baseAddress, $0.count) }
    }

    /// The lines already in a file (empty if it does not exist).
    public static func lines(of path: String) -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").map(String.init)
    }
}
