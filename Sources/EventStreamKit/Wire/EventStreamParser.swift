/// An incremental `text/event-stream` parser: bytes in, events out.
///
/// It implements the WHATWG HTML "event stream interpretation" exactly:
/// - a UTF-8 byte order mark is stripped once, at the start of the stream;
/// - lines end in CRLF, LF or CR, also when a CR ends one chunk and its LF starts the next;
/// - a line starting with `:` is a comment; a line with no colon is a field with an
///   empty value; one space after the colon is removed from the value;
/// - `data` values are joined with LF; a blank line dispatches the event, unless no
///   `data` field was seen; the type defaults to `message`;
/// - `id` sets the last event ID, which persists across events and is updated at the
///   next blank line even if no event is dispatched there; an `id` containing NUL is
///   ignored (and so is one longer than ``Limits/maxEventIDLength``, a bound of ours);
/// - `retry` counts only if its value is all ASCII digits;
/// - invalid UTF-8 decodes as U+FFFD.
///
/// Feed it chunks as they arrive, in any split: the events that come out do not depend
/// on where the chunks were cut. Call ``finish()`` at the end of the stream, which
/// discards an incomplete last event as the spec requires.
///
/// It never waits per byte or per line: one call parses a whole chunk with `memchr`
/// and hands back everything that chunk completed.
///
/// ```swift
/// var parser = EventStreamParser()
/// for element in try parser.parse(Array("id: 7\ndata: hi\n\n".utf8)) {
///     if case .event(let event) = element {
///         print(event.type, event.data, event.lastEventID) // message hi 7
///     }
/// }
/// ```
///
/// - Note: A hostile server must not exhaust a client's memory, so a line longer than
///   ``Limits/maxLineLength`` or an event whose data exceeds ``Limits/maxEventSize``
///   throws a ``WireError``; after that error every further call throws it again.
public struct EventStreamParser: Sendable {
    /// Bounds on what one stream may make the parser hold.
    public struct Limits: Hashable, Sendable {
        /// The longest line accepted, in bytes, without its line break. Default: 1 MiB.
        public var maxLineLength: Int
        /// The most data one event may carry, in bytes (its `data` values joined with
        /// LF). Default: 8 MiB.
        public var maxEventSize: Int
        /// The longest `id` value kept, in bytes; a longer one is ignored, as one with NUL
        /// is. Default: 4 KiB. The last event ID goes out with every later event and in the
        /// `Last-Event-ID` header of every reconnection: a 1 MiB ID sent once made each
        /// 6-byte event cost the client a megabyte (an outside attack), and a header that
        /// large is refused by most servers (8 to 16 KiB heads) anyway.
        public var maxEventIDLength: Int

        /// Creates limits; the defaults are 1 MiB per line, 8 MiB per event and 4 KiB per ID.
        public init(maxLineLength: Int = 1 << 20, maxEventSize: Int = 8 << 20, maxEventIDLength: Int = 4096) {
            self.maxLineLength = maxLineLength
            self.maxEventSize = maxEventSize
            self.maxEventIDLength = maxEventIDLength
        }
    }

    /// What one chunk can produce.
    public enum Element: Hashable, Sendable {
        /// A dispatched event.
        case event(MessageEvent)
        /// A valid `retry` field: the client's new reconnection time.
        case retry(Duration)
        /// A comment line's text, after the colon and one optional space. Clients
        /// ignore these; they are useful for telling heartbeats from silence.
        case comment(String)
    }

    /// The limits this parser enforces.
    public let limits: Limits
    /// The last event ID string: updated when an event is dispatched (or would have been,
    /// had it had data). This is what a client sends as `Last-Event-ID` on reconnect.
    public private(set) var lastEventID: String
    /// The most recent valid `retry` value seen, if any.
    public private(set) var reconnectionTime: Duration?

    private var lastEventIDBuffer: String
    private var eventType = ""
    private var data = ""
    private var hasData = false
    private var dataSize = 0
    private var partialLine: [UInt8] = []
    private var skipsLeadingLF = false
    private var bomBytesSeen = 0
    private var isPastBOM = false
    private var failure: WireError?

    /// Creates a parser for one stream.
    ///
    /// - Parameters:
    ///   - limits: Bounds on line length and event size.
    ///   - lastEventID: The last event ID carried over from an earlier connection, so that
    ///     events without an `id` on the new one report it, as browsers do.
    public init(limits: Limits = Limits(), lastEventID: String = "") {
        self.limits = limits
        self.lastEventID = lastEventID
        self.lastEventIDBuffer = lastEventID
    }

    /// Parses the next chunk of the stream and appends what it completes to `elements`.
    ///
    /// - Parameters:
    ///   - chunk: The next bytes of the stream, any length, split anywhere.
    ///   - elements: Receives the events, retry values and comments this chunk completes.
    /// - Throws: ``WireError`` with code ``WireError/Code/lineTooLong`` or
    ///   ``WireError/Code/eventTooLarge`` when a limit is passed. Elements completed
    ///   before the offending line are appended first.
    public mutating func parse(_ chunk: UnsafeRawBufferPointer, into elements: inout [Element]) throws(WireError) {
        if let failure { throw failure }
        do {
            try parseChunk(chunk, into: &elements)
        } catch {
            failure = error
            throw error
        }
    }

    /// Parses the next chunk of the stream and appends what it completes to `elements`.
    ///
    /// - Parameters:
    ///   - bytes: The next bytes of the stream, any length, split anywhere. An `Array`
    ///     or other contiguous collection is read in place.
    ///   - elements: Receives the events, retry values and comments this chunk completes.
    /// - Throws: ``WireError`` when a limit is passed; see ``parse(_:into:)-(UnsafeRawBufferPointer,_)``.
    public mutating func parse(_ bytes: some Sequence<UInt8>, into elements: inout [Element]) throws(WireError) {
        var outcome: Result<Void, WireError> = .success(())
        let contiguous: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            outcome = Result { () throws(WireError) in try parse(UnsafeRawBufferPointer(buffer), into: &elements) }
        }
        guard contiguous != nil else { return try parse(Array(bytes), into: &elements) }
        try outcome.get()
    }

    /// Parses the next chunk of the stream and returns what it completes.
    ///
    /// - Parameter bytes: The next bytes of the stream, any length, split anywhere.
    /// - Returns: The events, retry values and comments this chunk completes, in order.
    /// - Throws: ``WireError`` when a limit is passed. The elements this chunk completed
    ///   before the error are lost with it: use ``parse(_:into:)-(Sequence<UInt8>,_)`` to keep them.
    public mutating func parse(_ bytes: some Sequence<UInt8>) throws(WireError) -> [Element] {
        var elements: [Element] = []
        try parse(bytes, into: &elements)
        return elements
    }

    /// Ends the stream: an incomplete last line or event is discarded, as the spec
    /// requires. The parser can then read a new stream (a reconnection): its byte order
    /// mark is stripped again, and ``lastEventID`` carries over.
    public mutating func finish() {
        partialLine.removeAll(keepingCapacity: false)
        data = ""
        hasData = false
        dataSize = 0
        eventType = ""
        lastEventIDBuffer = lastEventID
        skipsLeadingLF = false
        bomBytesSeen = 0
        isPastBOM = false
        failure = nil
    }

    private static let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]

    private mutating func parseChunk(_ chunk: UnsafeRawBufferPointer, into elements: inout [Element]) throws(WireError) {
        guard var base = chunk.baseAddress?.assumingMemoryBound(to: UInt8.self), !chunk.isEmpty else { return }
        var count = chunk.count
        if !isPastBOM {
            var matched = 0
            while bomBytesSeen < 3, matched < count, base[matched] == Self.byteOrderMark[bomBytesSeen] {
                bomBytesSeen += 1
                matched += 1
            }
            if bomBytesSeen < 3 && matched == count { return }  // all a BOM prefix so far: wait
            isPastBOM = true
            if bomBytesSeen < 3 {
                // Not a BOM after all: the bytes held back start the first line.
                partialLine.append(contentsOf: Self.byteOrderMark[..<bomBytesSeen])
            }
            base += matched
            count -= matched
            if count == 0 { return }
        }

        var start = 0
        if skipsLeadingLF {
            skipsLeadingLF = false
            if base[0] == 10 { start = 1 }
        }
        var finder = LineBreakFinder(base, count: count)
        while start < count {
            let end = finder.next(from: start)
            let piece = UnsafeBufferPointer(start: base + start, count: end - start)
            guard partialLine.count + piece.count <= limits.maxLineLength else { throw .lineTooLong(limit: limits.maxLineLength) }
            if end == count {
                partialLine.append(contentsOf: piece)
                return
            }
            if partialLine.isEmpty {
                try processLine(piece, into: &elements)
            } else {
                var line: [UInt8] = []
                swap(&line, &partialLine)
                line.append(contentsOf: piece)
                try line.withUnsafeBufferPointer { (line) throws(WireError) in try processLine(line, into: &elements) }
                line.removeAll(keepingCapacity: true)
                swap(&line, &partialLine)
            }
            if base[end] == 13 {
                if end + 1 == count {
                    skipsLeadingLF = true
                    return
                }
                start = base[end + 1] == 10 ? end + 2 : end + 1
            } else {
                start = end + 1
            }
        }
    }

    private mutating func processLine(_ line: UnsafeBufferPointer<UInt8>, into elements: inout [Element]) throws(WireError) {
        guard let base = line.baseAddress, !line.isEmpty else {
            dispatch(into: &elements)
            return
        }
        let colon = LineBreakFinder.find(58, in: base, from: 0, count: line.count)
        var valueStart = colon + 1
        if valueStart < line.count && base[valueStart] == 32 { valueStart += 1 }
        let value = UnsafeBufferPointer(start: base + min(valueStart, line.count), count: max(line.count - valueStart, 0))

        switch colon {
        case 0:
            elements.append(.comment(String(decoding: value, as: UTF8.self)))
        case 4 where base[0] == 100 && base[1] == 97 && base[2] == 116 && base[3] == 97:  // data
            try appendData(value)
        case 5 where base[0] == 101 && base[1] == 118 && base[2] == 101 && base[3] == 110 && base[4] == 116:  // event
            eventType = String(decoding: value, as: UTF8.self)
        case 2 where base[0] == 105 && base[1] == 100:  // id
            if let valueBase = value.baseAddress, LineBreakFinder.find(0, in: valueBase, from: 0, count: value.count) < value.count {
                return  // an id with NUL is ignored
            }
            guard value.count <= limits.maxEventIDLength else { return }  // so is one over the limit
            lastEventIDBuffer = String(decoding: value, as: UTF8.self)
        case 5 where base[0] == 114 && base[1] == 101 && base[2] == 116 && base[3] == 114 && base[4] == 121:  // retry
            if let milliseconds = Self.parseDigits(value) {
                reconnectionTime = .milliseconds(milliseconds)
                elements.append(.retry(.milliseconds(milliseconds)))
            }
        default:
            break  // unknown fields are ignored
        }
    }

    private mutating func appendData(_ value: UnsafeBufferPointer<UInt8>) throws(WireError) {
        let newSize = dataSize + (hasData ? 1 : 0) + value.count
        guard newSize <= limits.maxEventSize else { throw .eventTooLarge(limit: limits.maxEventSize) }
        // Lines end at ASCII bytes, so decoding line by line equals decoding the joined data.
        if hasData {
            data.append("\n")
            data.append(String(decoding: value, as: UTF8.self))
        } else {
            data = String(decoding: value, as: UTF8.self)
            hasData = true
        }
        dataSize = newSize
    }

    private mutating func dispatch(into elements: inout [Element]) {
        lastEventID = lastEventIDBuffer
        defer { eventType = "" }
        guard hasData else { return }
        elements.append(.event(MessageEvent(type: eventType.isEmpty ? "message" : eventType, data: data, lastEventID: lastEventID)))
        data = ""
        hasData = false
        dataSize = 0
    }

    /// The value of an all-ASCII-digit, non-empty field, saturated to `Int64.max`; `nil` otherwise.
    private static func parseDigits(_ value: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard !value.isEmpty else { return nil }
        var result: Int64 = 0
        for byte in value {
            guard byte >= 48 && byte <= 57 else { return nil }
            let (times10, o1) = result.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(Int64(byte - 48))
            result = (o1 || o2) ? .max : sum
        }
        return result
    }
}
