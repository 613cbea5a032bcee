extension ServerSentEvent {
    /// Appends this event in `text/event-stream` format to `buffer`.
    ///
    /// Comments come first (`: text`), then `id`, `event`, `retry` (whole milliseconds)
    /// and one `data:` line per line of the payload, then the blank line that ends the
    /// event. CR, LF and CRLF in the payload or a comment all count as line breaks, so
    /// nothing in them can start another field: a client reads the payload back with
    /// every break as LF. An event with only comments gets no blank line, since it
    /// changes nothing in a client's parser state.
    ///
    /// - Parameter buffer: The bytes to append to.
    public func encode(into buffer: inout [UInt8]) {
        for comment in comments {
            Self.appendLines(of: Array(comment.utf8), field: [], to: &buffer)
        }
        var isEvent = false
        if let id {
            Self.appendField(Self.idField, id.utf8, to: &buffer)
            isEvent = true
        }
        if let event {
            Self.appendField(Self.eventField, event.utf8, to: &buffer)
            isEvent = true
        }
        if let retry {
            Self.appendField(Self.retryField, String(retry.wholeMilliseconds).utf8, to: &buffer)
            isEvent = true
        }
        if let data {
            Self.appendLines(of: data, field: Self.dataField, to: &buffer)
            isEvent = true
        }
        if isEvent { buffer.append(10) }
    }

    /// This event's encoded bytes; see ``encode(into:)``.
    public var encoded: [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 + (data?.count ?? 0) + (event?.utf8.count ?? 0) + (id?.utf8.count ?? 0))
        encode(into: &buffer)
        return buffer
    }

    private static let idField = Array("id".utf8)
    private static let eventField = Array("event".utf8)
    private static let retryField = Array("retry".utf8)
    private static let dataField = Array("data".utf8)

    /// `name: value` LF, or `name:` LF for an empty value. The parser strips exactly one
    /// space after the colon, so a value that starts with a space survives.
    private static func appendField(_ name: [UInt8], _ value: some Collection<UInt8>, to buffer: inout [UInt8]) {
        buffer.append(contentsOf: name)
        buffer.append(58)  // ":"
        if !value.isEmpty {
            buffer.append(32)
            buffer.append(contentsOf: value)
        }
        buffer.append(10)
    }

    /// One field line per line of `bytes`, splitting at CR, LF and CRLF. An empty
    /// `field` writes comment lines.
    private static func appendLines(of bytes: [UInt8], field: [UInt8], to buffer: inout [UInt8]) {
        bytes.withUnsafeBufferPointer { raw in
            guard let base = raw.baseAddress else {
                appendField(field, EmptyCollection(), to: &buffer)
                return
            }
            var finder = LineBreakFinder(base, count: raw.count)
            var start = 0
            while true {
                let end = finder.next(from: start)
                appendField(field, UnsafeBufferPointer(rebasing: raw[start..<end]), to: &buffer)
                guard end < raw.count else { return }
                start = end + (raw[end] == 13 && end + 1 < raw.count && raw[end + 1] == 10 ? 2 : 1)
            }
        }
    }
}

extension Duration {
    /// The duration in whole milliseconds, rounded toward zero and saturated to `Int64`.
    var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        let (ms, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, overflow2) = ms.addingReportingOverflow(attoseconds / 1_000_000_000_000_000)
        return overflow2 ? .max : sum
    }
}
