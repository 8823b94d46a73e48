/// Writes, for the protocol tests, a `sample(version:)` for every generated struct: a value with a
/// non-default value in every field that exists in that version (tagged fields included), so an
/// encode→decode round trip exercises every field of every version.
struct SampleEmitter {
    let schema: MessageSchema
    private let names: SwiftEmitter
    private var lines: [String] = []
    private var counter = 0

    init(schema: MessageSchema, sourceFile: String) {
        self.schema = schema
        self.names = SwiftEmitter(schema: schema, sourceFile: sourceFile)
    }

    mutating func render() -> [String] {
        emit(typePath: schema.name, fields: schema.fields)
        for common in schema.commonStructs {
            emit(typePath: "\(schema.name).\(common.name)", fields: common.fields)
        }
        return lines
    }

    private mutating func emit(typePath: String, fields: [Field]) {
        let valid = schema.validVersions
        let present = fields.filter { !$0.versions.intersection(valid).isEmpty }
        lines.append("extension \(typePath): VersionedSample {")
        lines.append("    static func sample(version: Int16) -> Self {")
        lines.append("        var value = Self()")
        for field in present {
            let condition = field.versions.condition(within: valid)
            let assignment = "value.\(names.swiftName(field)) = \(sampleExpression(field.type, field: field))"
            if condition == "true" {
                lines.append("        \(assignment)")
            } else {
                lines.append("        if \(condition) { \(assignment) }")
            }
        }
        lines.append("        return value")
        lines.append("    }")
        lines.append("}")
        lines.append("")
        for field in present {
            if let nested = field.structFields, let name = structName(field.type) {
                emit(typePath: "\(typePath).\(name)", fields: nested)
            }
        }
    }

    private func structName(_ type: FieldType) -> String? {
        switch type {
        case .structure(let name): name
        case .array(let element): structName(element)
        default: nil
        }
    }

    private mutating func sampleExpression(_ type: FieldType, field: Field) -> String {
        counter += 1
        let seed = counter
        switch type {
        case .int8, .int16, .uint16, .int32, .int64:
            // Never the default, so tagged fields are really written.
            let fallback = Int(field.defaultText.flatMap { Int($0) } ?? 0)
            let value = seed == fallback ? seed + 1 : seed
            return "\(value)"
        case .errorCode: return "ErrorCode(rawValue: \(seed == 0 ? 1 : seed))"
        case .float64: return "\(Double(seed) + 0.5)"
        case .bool: return field.defaultText == "true" ? "false" : "true"
        case .string: return "\"\(field.name)-\(seed)\""
        case .bytes, .records: return "ByteBuffer(bytes: [\(seed % 256), 1, 2, 3])"
        case .uuid: return "KafkaUUID(high: 0x0102_0304_0506_0708, low: \(seed))"
        case .structure(let name):
            // A common struct is declared in the message's type, which an extension of a nested one
            // does not see: name it in full.
            let isCommon = schema.commonStructs.contains { $0.name == name }
            return "\(isCommon ? "\(schema.name)." : "")\(name).sample(version: version)"
        case .array(let element):
            let first = sampleExpression(element, field: field)
            let second = sampleExpression(element, field: field)
            return "[\(first), \(second)]"
        }
    }
}
