import EventStreamKit

extension HTTPResponse {
    /// The bytes of this complete response: status line, its fields and `extraHeaders`,
    /// `Date`, `Content-Length` (not on 1xx, 204 or 304, nor on a `streamed` answer to
    /// `HEAD`), `Connection`, then the body (none for `HEAD`, 1xx, 204 or 304).
    ///
    /// The server frames the message: a `Content-Length`, `Transfer-Encoding` or
    /// `Connection` field among `headers` is left out. `nil` if a field would inject a line
    /// (CR, LF or NUL in a value or the reason phrase, a name that is not a token, or a
    /// status code that is not three digits): the caller answers 500.
    func serialized(minorVersion: Int, isHead: Bool, keepAlive: Bool, streamed: Bool = false, extraHeaders: [(name: String, value: String)] = []) -> [UInt8]? {
        guard (100...999).contains(status.code), !status.reason.utf8.contains(where: { $0 == 13 || $0 == 10 || $0 == 0 }) else { return nil }
        var head = "HTTP/1.1 \(status.code) \(status.reason)\r\n"
        var hasDate = false
        for (name, value) in headers.fields + extraHeaders {
            guard Self.isValidField(name: name, value: value) else { return nil }
            switch name.lowercasedASCII {
            case "content-length", "transfer-encoding", "connection": continue
            case "date": hasDate = true
            default: break
            }
            head += "\(name): \(value)\r\n"
        }
        if !hasDate { head += "Date: \(HTTPDate.now())\r\n" }
        let hasNoContent = (100..<200).contains(status.code) || status.code == 204 || status.code == 304
        if !hasNoContent && !streamed { head += "Content-Length: \(body.count)\r\n" }
        head += keepAlive ? (minorVersion == 0 ? "Connection: keep-alive\r\n\r\n" : "\r\n") : "Connection: close\r\n\r\n"
        var bytes = Array(head.utf8)
        if !isHead && !hasNoContent { bytes += body }
        return bytes
    }

    /// A field that cannot start another line or field: a token name, and a value without
    /// CR, LF or NUL.
    static func isValidField(name: String, value: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy(HTTPHeadScanner.isTokenByte) && !value.utf8.contains { $0 == 13 || $0 == 10 || $0 == 0 }
    }
}
