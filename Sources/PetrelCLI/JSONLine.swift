/// Minimal JSON writing for the CLI's JSON-lines output (strings, numbers, null, flat objects).
enum JSONLine {
    enum Value {
        case string(String?)
        case number(Int64)
        case object([(String, Value)])
    }

    static func encode(_ fields: [(String, Value)]) -> String {
        render(.object(fields))
    }

    private static func render(_ value: Value) -> String {
        switch value {
        case .string(nil): return "null"
        case .string(let text?): return quote(text)
        case .number(let number): return String(number)
        case .object(let fields):
            return "{" + fields.map { quote($0.0) + ":" + render($0.1) }.joined(separator: ",") + "}"
        }
    }

    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let control where control.value < 0x20:
                out +=
                    "\\u" + String(repeating: "0", count: 4 - String(control.value, radix: 16).count)
                    + String(control.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
