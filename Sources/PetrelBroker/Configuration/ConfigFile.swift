/// A broker config file: `name = value` lines (or `name: value`), `#` comments and blank lines.
public struct ConfigFile: Sendable {
    public struct Entry: Sendable {
        public var key: String
        public var value: String
        public var line: Int
    }

    public struct SyntaxError: Error, CustomStringConvertible, Sendable {
        public var path: String
        public var line: Int
        public var description: String { "\(path) line \(line): expected NAME = VALUE." }
    }

    public var path: String
    public var entries: [Entry]

    public init(path: String, text: String) throws(SyntaxError) {
        self.path = path
        var entries: [Entry] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = Self.trimmed(raw)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let separator = line.firstIndex(where: { $0 == "=" || $0 == ":" }) else {
                throw SyntaxError(path: path, line: index + 1)
            }
            let key = Self.trimmed(line[..<separator])
            guard !key.isEmpty else { throw SyntaxError(path: path, line: index + 1) }
            var value = Self.trimmed(line[line.index(after: separator)...])
            if value.count >= 2, value.first == "\"", value.last == "\"" {
                value = String(value.dropFirst().dropLast())
            }
            entries.append(Entry(key: key, value: value, line: index + 1))
        }
        self.entries = entries
    }

    private static func trimmed<S: StringProtocol>(_ text: S) -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        return String(text.drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
