public import EventStreamKit

/// The request line and header fields of one HTTP/1.x request.
public struct HTTPRequestHead: Sendable {
    /// The method, e.g. `GET`.
    public var method: String
    /// The request target as sent: path and query.
    public var target: String
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    public var minorVersion: Int
    /// The header fields.
    public var headers: HeaderFields
    /// The authority of an absolute-form target (`GET http://host:port/path`), which RFC 9112
    /// §3.2.2 says replaces `Host`; `nil` for the usual origin form.
    var targetAuthority: String?

    /// The host the request is for: an absolute-form target's authority, else `Host`.
    var authority: String? { targetAuthority ?? headers["Host"] }

    /// The path part of the target, percent-decoded.
    public var path: String {
        let raw = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        return raw.removingPercentEncoding(plusAsSpace: false)
    }

    /// The query parameters, percent-decoded (`+` as space); the first of repeated names.
    public var query: [String: String] {
        guard let question = target.firstIndex(of: "?") else { return [:] }
        var result: [String: String] = [:]
        for pair in target[target.index(after: question)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0]).removingPercentEncoding(plusAsSpace: true)
            let value = parts.count > 1 ? String(parts[1]).removingPercentEncoding(plusAsSpace: true) : ""
            if result[name] == nil { result[name] = value }
        }
        return result
    }

    /// Whether the connection stays open after the response (HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    public var keepAlive: Bool {
        let tokens = headers.values("Connection").flatMap { $0.split(separator: ",") }.map { $0.trimmingSpaces.lowercasedASCII }
        return minorVersion >= 1 ? !tokens.contains("close") : tokens.contains("keep-alive")
    }
}

extension String {
    /// Decodes `%XX` escapes (invalid ones are kept as they are) and, if asked, `+` as space.
    func removingPercentEncoding(plusAsSpace: Bool) -> String {
        let bytes = Array(utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let byte = bytes[i]
            if byte == 37, i + 2 < bytes.count, let high = hexValue(bytes[i + 1]), let low = hexValue(bytes[i + 2]) {
                out.append(high << 4 | low)
                i += 3
            } else {
                out.append(plusAsSpace && byte == 43 ? 32 : byte)
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

private func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case 48...57: byte - 48
    case 65...70: byte - 55
    case 97...102: byte - 87
    default: nil
    }
}
