import OrderEvents

/// Where an order is. A status only moves forward: created, then paid, then shipped.
enum OrderStatus: String, Codable, Sendable, CaseIterable, Comparable {
    case created
    case paid
    case shipped

    /// The status an order event moves its order to.
    init(_ kind: OrderEvent.Kind) {
        switch kind {
        case .created: self = .created
        case .paid: self = .paid
        case .shipped: self = .shipped
        }
    }

    static func < (lhs: OrderStatus, rhs: OrderStatus) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}
