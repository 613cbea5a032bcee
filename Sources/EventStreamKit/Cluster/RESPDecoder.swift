/// Reads RESP2 values from bytes as they arrive, for any split of the input: a pure value,
/// fed what a socket gives (``feed(_:)``) and asked for complete replies (``next()``).
///
/// Every byte is examined about once: a partial value keeps the arrays it has built so far
/// on a stack, and a line that has not ended is not scanned again from its start. Everything
/// a server can make it hold is bounded (``Limits``); past a bound, or on a malformed reply,
/// it throws and stays failed (the connection must be dropped: the stream cannot be resynced).
struct RESPDecoder {
    /// Bounds on what one reply may make the decoder hold.
    struct Limits: Sendable {
        /// The longest bulk string. Default: 64 MiB.
        var maxBulkLength = 64 << 20
        /// The most elements of one array. Default: 1,048,576.
        var maxArrayLength = 1 << 20
        /// The deepest nesting of arrays. Default: 16 (a stream reply is 4 deep).
        var maxDepth = 16
        /// The longest simple string, error or number line. Default: 64 KiB.
        var maxLineLength = 64 * 1024
        /// The most bytes one reply may hold in total: its strings' bytes, and
        /// ``valueCost`` for every value, so that a reply of millions of small values (`:1`)
        /// is bounded as a reply of long strings is. Default: 128 MiB.
        var maxReplyBytes = 128 << 20
    }

    /// What each value of a reply is charged against ``Limits/maxReplyBytes`` besides its
    /// strings' bytes: about what a `RESPValue` costs in an array, with its share of overhead.
    static let valueCost = 32

    private struct Pending {
        var remaining: Int
        var elements: [RESPValue]
    }

    let limits: Limits
    private var buffer: [UInt8] = []
    /// Where the next value starts in `buffer`.
    private var offset = 0
    /// Where the search for the current line's end resumes.
    private var scanned = 0
    private var stack: [Pending] = []
    /// Bytes of strings held by the reply being built.
    private var replyBytes = 0
    private var failure: RESPError?

    init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Bytes received and not yet part of a returned value.
    var bufferedCount: Int { buffer.count - offset }

    /// Adds bytes from the server.
    mutating func feed(_ bytes: some Collection<UInt8>) {
        if offset > 0, offset == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 64 * 1024)
            scanned -= offset
            offset = 0
        } else if offset > 64 * 1024, offset > buffer.count / 2 {
            buffer.removeFirst(offset)
            scanned -= offset
            offset = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete reply, or `nil` until more bytes arrive.
    ///
    /// - Throws: ``RESPError`` for a malformed reply or one over ``limits``; then again on
    ///   every call.
    mutating func next() throws(RESPError) -> RESPValue? {
        if let failure { throw failure }
        do {
            return try decode()
        } catch {
            failure = error
            throw error
        }
    }

    private mutating func decode() throws(RESPError) -> RESPValue? {
        while true {
            guard offset < buffer.count else { return nil }
            guard let lineEnd = try findLineEnd() else { return nil }
            let type = buffer[offset]
            let line = buffer[(offset + 1)..<lineEnd]
            var item: RESPValue
            var end = lineEnd + 2
            switch type {
            case UInt8(ascii: "+"):
                item = .simpleString(String(decoding: line, as: UTF8.self))
                try count(line.count)
            case UInt8(ascii: "-"):
                item = .error(String(decoding: line, as: UTF8.self))
                try count(line.count)
            case UInt8(ascii: ":"):
                guard let value = Self.integer(line) else { throw RESPError("malformed integer reply") }
                item = .integer(value)
            case UInt8(ascii: "$"):
                guard let length = Self.integer(line), length >= -1 else { throw RESPError("malformed bulk string length") }
                if length == -1 {
                    item = .bulkString(nil)
                } else {
                    guard length <= limits.maxBulkLength else {
                        throw RESPError("a bulk string of \(length) bytes, over the limit of \(limits.maxBulkLength)")
                    }
                    let count = Int(length)
                    guard buffer.count - end >= count + 2 else { return nil }  // the header is rescanned, not the body
                    guard buffer[end + count] == 13, buffer[end + count + 1] == 10 else {
                        throw RESPError("a bulk string not followed by CRLF")
                    }
                    try self.count(count)
                    item = .bulkString(Array(buffer[end..<(end + count)]))
                    end += count + 2
                }
            case UInt8(ascii: "*"):
                guard let length = Self.integer(line), length >= -1 else { throw RESPError("malformed array length") }
                if length == -1 {
                    item = .array(nil)
                } else if length == 0 {
                    item = .array([])
                } else {
                    guard length <= limits.maxArrayLength else {
                        throw RESPError("an array of \(length) elements, over the limit of \(limits.maxArrayLength)")
                    }
                    guard stack.count < limits.maxDepth else {
                        throw RESPError("arrays nested deeper than \(limits.maxDepth)")
                    }
                    try count(Self.valueCost)
                    var elements: [RESPValue] = []
                    elements.reserveCapacity(min(Int(length), 1024))
                    stack.append(Pending(remaining: Int(length), elements: elements))
                    consume(to: end)
                    continue
                }
            default:
                throw RESPError("a reply starting with byte \(type), not one of + - : $ *")
            }
            try count(Self.valueCost)
            consume(to: end)
            // Attach to the arrays being built; a finished array is itself an item.
            while var top = stack.popLast() {
                top.elements.append(item)
                top.remaining -= 1
                guard top.remaining == 0 else {
                    stack.append(top)
                    break
                }
                item = .array(top.elements)
            }
            if stack.isEmpty {
                replyBytes = 0
                return item
            }
        }
    }

    /// The index of the CR of the line that starts at `offset`, or `nil` if it has not
    /// ended yet.
    private mutating func findLineEnd() throws(RESPError) -> Int? {
        var index = max(scanned, offset + 1)
        // The same verdict whether the line arrives whole or in pieces: the first content
        // byte past the limit fails it, wherever the line's CRLF is.
        let limit = offset + 1 + limits.maxLineLength
        while index < buffer.count {
            let byte = buffer[index]
            if byte != 13 {
                if byte == 10 { throw RESPError("an LF without CR in a reply line") }
                if index >= limit { throw RESPError("a reply line longer than \(limits.maxLineLength) bytes") }
                index += 1
                continue
            }
            guard index + 1 < buffer.count else { break }
            guard buffer[index + 1] == 10 else { throw RESPError("a CR without LF in a reply line") }
            return index
        }
        scanned = index
        return nil
    }

    private mutating func consume(to end: Int) {
        offset = end
        scanned = end
    }

    private mutating func count(_ bytes: Int) throws(RESPError) {
        replyBytes += bytes
        guard replyBytes <= limits.maxReplyBytes else {
            throw RESPError("a reply holding more than \(limits.maxReplyBytes) bytes (its strings, and \(Self.valueCost) for each value)")
        }
    }

    /// `-?[0-9]+` as an `Int64`, `nil` if malformed or out of range.
    static func integer(_ digits: ArraySlice<UInt8>) -> Int64? {
        var rest = digits[...]
        let negative = rest.first == UInt8(ascii: "-")
        if negative { rest = rest.dropFirst() }
        guard !rest.isEmpty, rest.count <= 19 else { return nil }
        var value: Int64 = 0
        for byte in rest {
            guard byte >= 48, byte <= 57 else { return nil }
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(Int64(byte - 48))
            guard !overflow1, !overflow2 else { return nil }
            value = sum
        }
        return negative ? -value : value
    }
}

/// A reply that is not valid RESP2, or over the decoder's limits.
struct RESPError: Error, CustomStringConvertible, Sendable {
    let description: String

    init(_ description: String) {
        self.description = "invalid Redis reply: \(description)"
    }
}
