/// HTTP header fields in the order received; names compare case-insensitively.
///
/// One type for both directions: the headers ``EventSource`` sends and receives, and those of
/// the built-in server's requests. Named apart from the frameworks' own header types
/// (swift-http-types' `HTTPFields`, NIO's `HTTPHeaders`), so that importing EventStreamKit
/// beside them leaves their names unambiguous.
public struct HeaderFields: Sendable, Sequence, ExpressibleByDictionaryLiteral {
    /// The fields, names as written.
    public private(set) var fields: [(name: String, value: String)]

    /// Creates headers from fields.
    public init(_ fields: [(name: String, value: String)] = []) {
        self.fields = fields
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.fields = elements.map { (name: $0.0, value: $0.1) }
    }

    /// The first value of the field named `name` (case-insensitive), if any.
    public subscript(name: String) -> String? {
        fields.first { $0.name.lowercasedASCII == name.lowercasedASCII }?.value
    }

    /// Every value of the field named `name` (case-insensitive).
    public func values(_ name: String) -> [String] {
        let key = name.lowercasedASCII
        return fields.filter { $0.name.lowercasedASCII == key }.map(\.value)
    }

    /// Appends a field.
    public mutating func add(_ name: String, _ value: String) {
        fields.append((name, value))
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        fields.makeIterator()
    }
}

extension String {
    /// Lowercased in ASCII only: header names are ASCII tokens.
    package var lowercasedASCII: String {
        String(decoding: utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (HTTP's optional whitespace).
    package var trimmingSpaces: String {
        let bytes = Array(utf8)
        var start = 0, end = bytes.count
        while start < end, bytes[start] == 32 || bytes[start] == 9 { start += 1 }
        while end > start, bytes[end - 1] == 32 || bytes[end - 1] == 9 { end -= 1 }
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }
}
