import Foundation
import OrderEvents

/// Every order's latest status, by order id: the status topic read as a table. Restored at start-up
/// from the topic, then kept up to date with the updates the service publishes.
struct StatusTable: Sendable {
    private var statuses: [String: LatestStatus] = [:]

    var count: Int { statuses.count }

    /// An update sets the order's status; a tombstone removes the order.
    mutating func apply(_ update: StatusUpdate) {
        statuses[update.orderID] = update.status
    }

    /// The update an order event calls for, or nil if it changes nothing: the order is already at that
    /// status or further (a redelivered event, or one that arrived late). With `deletingShipped`, an
    /// order that ships is deleted instead (a tombstone; none for an order the table does not have): the
    /// table keeps the orders still under way.
    func update(for event: OrderEvent, at timestamp: Int64, deletingShipped: Bool) -> StatusUpdate? {
        let status = OrderStatus(event.kind)
        let current = statuses[event.orderID]?.status
        if let current, current >= status { return nil }
        if deletingShipped && status == .shipped {
            return current == nil ? nil : StatusUpdate(orderID: event.orderID, status: nil)
        }
        return StatusUpdate(orderID: event.orderID, status: LatestStatus(status: status, timestamp: timestamp))
    }

    /// How many orders have each status, every status named (zero included).
    var countsByStatus: [(status: OrderStatus, orders: Int)] {
        let counts = Dictionary(grouping: statuses.values, by: \.status).mapValues(\.count)
        return OrderStatus.allCases.map { ($0, counts[$0] ?? 0) }
    }

    /// The summary the service prints: a heading, then one "  STATUS COUNT" line per status.
    func summary(_ heading: String) -> String {
        ([heading] + countsByStatus.map { "  \($0.status.rawValue) \($0.orders)" }).joined(separator: "\n")
    }

    /// One "ORDER-ID STATUS UPDATED-AT" line per order, by order number (order-2 before order-10).
    func rows() -> [String] {
        statuses.keys.sorted { $0.compare($1, options: .numeric) == .orderedAscending }.map { orderID in
            let status = statuses[orderID]!
            return "\(orderID) \(status.status.rawValue) \(status.updatedAt)"
        }
    }
}
