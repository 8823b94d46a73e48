import Foundation

/// A version range from a schema: "3+", "0-5", "7" or "none".
struct VersionRange: Equatable {
    var lower: Int
    var upper: Int?  // nil = open-ended
    var isEmpty: Bool

    static let none = VersionRange(lower: 0, upper: nil, isEmpty: true)
    static let all = VersionRange(lower: 0, upper: nil, isEmpty: false)

    init(lower: Int, upper: Int?, isEmpty: Bool = false) {
        self.lower = lower
        self.upper = upper
        self.isEmpty = isEmpty
    }

    init(parsing text: String) throws {
        let text = text.trimmingCharacters(in: .whitespaces)
        if text == "none" {
            self = .none
        } else if text.hasSuffix("+"), let low = Int(text.dropLast()) {
            self.init(lower: low, upper: nil)
        } else if let dash = text.firstIndex(of: "-"), let low = Int(text[..<dash]),
            let high = Int(text[text.index(after: dash)...])
        {
            self.init(lower: low, upper: high)
        } else if let exact = Int(text) {
            self.init(lower: exact, upper: exact)
        } else {
            throw SchemaError("cannot parse version range '\(text)'")
        }
    }

    /// Whether this range covers every version in `other` (so no runtime check is needed).
    func covers(_ other: VersionRange) -> Bool {
        if isEmpty { return other.isEmpty }
        if other.isEmpty { return true }
        guard lower <= other.lower else { return false }
        guard let upper else { return true }
        guard let otherUpper = other.upper else { return false }
        return otherUpper <= upper
    }

    /// The intersection with another range.
    func intersection(_ other: VersionRange) -> VersionRange {
        if isEmpty || other.isEmpty { return .none }
        let low = max(lower, other.lower)
        let high: Int? =
            switch (upper, other.upper) {
            case (nil, nil): nil
            case (let a?, nil): a
            case (nil, let b?): b
            case (let a?, let b?): min(a, b)
            }
        if let high, high < low { return .none }
        return VersionRange(lower: low, upper: high)
    }

    /// A Swift boolean expression testing `version` against this range, within `valid` (the message's versions).
    func condition(within valid: VersionRange) -> String {
        let effective = intersection(valid)
        if effective.isEmpty { return "false" }
        if effective.covers(valid) { return "true" }
        let needsLower = effective.lower > valid.lower
        let needsUpper: Bool = {
            guard let upper = effective.upper else { return false }
            guard let validUpper = valid.upper else { return true }
            return upper < validUpper
        }()
        switch (needsLower, needsUpper) {
        case (true, true): return "(\(effective.lower)...\(effective.upper!)).contains(version)"
        case (true, false): return "version >= \(effective.lower)"
        case (false, true): return "version <= \(effective.upper!)"
        case (false, false): return "true"
        }
    }
}

struct SchemaError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The wire type of a field.
indirect enum FieldType {
    case int8, int16, uint16, int32, int64, float64, bool, string, bytes, records, uuid
    /// An int16 field named ...ErrorCode: typed as PetrelProtocol's `ErrorCode` in Swift.
    case errorCode
    case array(FieldType)
    case structure(String)

    init(parsing text: String) {
        if text.hasPrefix("[]") {
            self = .array(FieldType(parsing: String(text.dropFirst(2))))
            return
        }
        switch text {
        case "int8": self = .int8
        case "int16": self = .int16
        case "uint16": self = .uint16
        case "int32": self = .int32
        case "int64": self = .int64
        case "float64": self = .float64
        case "bool": self = .bool
        case "string": self = .string
        case "bytes": self = .bytes
        case "records": self = .records
        case "uuid": self = .uuid
        default: self = .structure(text)
        }
    }

    var isInteger: Bool {
        switch self {
        case .int8, .int16, .uint16, .int32, .int64: true
        default: false
        }
    }

    /// The Swift type of a non-optional value.
    var swiftType: String {
        switch self {
        case .int8: "Int8"
        case .int16: "Int16"
        case .errorCode: "ErrorCode"
        case .uint16: "UInt16"
        case .int32: "Int32"
        case .int64: "Int64"
        case .float64: "Double"
        case .bool: "Bool"
        case .string: "String"
        case .bytes, .records: "ByteBuffer"
        case .uuid: "KafkaUUID"
        case .array(let element): "[\(element.swiftType)]"
        case .structure(let name): name
        }
    }
}

/// One field of a message or nested struct.
struct Field {
    var name: String
    var type: FieldType
    var versions: VersionRange
    var nullableVersions: VersionRange
    var taggedVersions: VersionRange
    var tag: Int?
    var defaultText: String?
    var about: String?
    /// Inline declaration of a struct (or array-of-struct) type.
    var structFields: [Field]?

    init(json: [String: Any]) throws {
        guard let name = json["name"] as? String, let type = json["type"] as? String else {
            throw SchemaError("field without name or type: \(json)")
        }
        self.name = name
        self.type = FieldType(parsing: type)
        if case .int16 = self.type, name.hasSuffix("ErrorCode") { self.type = .errorCode }
        self.versions = try VersionRange(parsing: json["versions"] as? String ?? "none")
        self.nullableVersions = try (json["nullableVersions"] as? String).map(VersionRange.init(parsing:)) ?? .none
        self.taggedVersions = try (json["taggedVersions"] as? String).map(VersionRange.init(parsing:)) ?? .none
        self.tag = json["tag"] as? Int
        self.defaultText = json["default"] as? String
        self.about = json["about"] as? String
        if let children = json["fields"] as? [[String: Any]] {
            self.structFields = try children.map(Field.init(json:))
        }
    }

    var isNullableAnywhere: Bool { !nullableVersions.isEmpty }
}

/// A whole schema file: a request, response, header or data type.
struct MessageSchema {
    var name: String
    var kind: String
    var apiKey: Int?
    var validVersions: VersionRange
    var flexibleVersions: VersionRange
    var fields: [Field]
    var commonStructs: [(name: String, fields: [Field])]

    init(contentsOf url: URL) throws {
        // Kafka's schema files carry whole-line // comments, which JSON does not allow.
        let text = try String(contentsOf: url, encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("//") }
            .joined(separator: "\n")
        guard let json = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            let name = json["name"] as? String, let kind = json["type"] as? String,
            let valid = json["validVersions"] as? String, let fields = json["fields"] as? [[String: Any]]
        else {
            throw SchemaError("\(url.lastPathComponent) is not a message schema")
        }
        self.name = name
        self.kind = kind
        self.apiKey = json["apiKey"] as? Int
        self.validVersions = try VersionRange(parsing: valid)
        self.flexibleVersions = try VersionRange(parsing: json["flexibleVersions"] as? String ?? "none")
        // Structs a schema shares between fields ("commonStructs"): declared once, in the message's type,
        // where every field of that type finds them.
        self.commonStructs = try (json["commonStructs"] as? [[String: Any]] ?? []).map { shared in
            guard let name = shared["name"] as? String, let fields = shared["fields"] as? [[String: Any]] else {
                throw SchemaError("\(url.lastPathComponent) has a common struct without name or fields")
            }
            return (name, try fields.map(Field.init(json:)))
        }
        self.fields = try fields.map(Field.init(json:))
    }
}
