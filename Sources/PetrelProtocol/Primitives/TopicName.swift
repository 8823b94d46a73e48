/// Kafka's rules for topic names.
public enum TopicName {
    public static let maxLength = 249
    /// Where committed offsets and group metadata live, as in Kafka.
    public static let consumerOffsets = "__consumer_offsets"

    /// Topics the broker writes itself: clients may read them, not write, delete or extend them.
    public static func isInternal(_ name: String) -> Bool { name == consumerOffsets }

    /// Nil if `name` is a legal topic name, otherwise why not.
    public static func invalidityReason(_ name: String) -> String? {
        if name.isEmpty { return "a topic name cannot be empty" }
        if name == "." || name == ".." { return "a topic name cannot be \"\(name)\"" }
        if name.utf8.count > maxLength { return "a topic name is at most \(maxLength) characters" }
        let legal = name.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: ".")
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
        return legal ? nil : "a topic name may contain only ASCII letters, digits, '.', '_' and '-'"
    }
}
