import EventStreamKit
import OpenAPIRuntime

/// What a client app sees of one stream, in the WHATWG model: the events dispatched (type,
/// data, last event ID at dispatch) and the reconnection time the stream left, in ms.
/// Compared byte for byte: Swift's `String ==` would call "é" and "e\u{301}" equal.
struct Outcome: Equatable, CustomStringConvertible {
    struct Event: Equatable {
        var type: [UInt8]
        var data: [UInt8]
        var lastEventID: [UInt8]

        init(type: String = "message", data: String, lastEventID: String = "") {
            self.type = Array(type.utf8)
            self.data = Array(data.utf8)
            self.lastEventID = Array(lastEventID.utf8)
        }

        init(_ event: MessageEvent) {
            self.init(type: event.type, data: event.data, lastEventID: event.lastEventID)
        }
    }

    var events: [Event] = []
    var retry: Int64?

    var description: String {
        func show(_ bytes: [UInt8]) -> String {
            let text = String(decoding: bytes, as: UTF8.self)
            return text.count > 60 ? "\(text.prefix(40).debugDescription)… (\(bytes.count) bytes)" : text.debugDescription
        }
        let events = self.events.map { "(\(show($0.type)), \(show($0.data)), id \(show($0.lastEventID)))" }
        return "[\(events.joined(separator: ", "))] retry \(retry.map(String.init) ?? "unset")"
    }
}

/// One stream of bytes, what the WHATWG spec says a client makes of it, and, where
/// swift-openapi-runtime makes something else of it, what and whose fault that is.
struct CorpusCase {
    let name: String
    let bytes: [UInt8]
    let spec: Outcome
    /// swift-openapi-runtime 1.13.4's outcome where it differs from `spec`.
    let openAPIRuntime: Outcome?
    /// Why they differ, with the spec's words.
    let verdict: String

    init(_ name: String, _ bytes: [UInt8], _ events: [Outcome.Event], retry: Int64? = nil, openAPIRuntime: Outcome? = nil, verdict: String = "") {
        self.name = name
        self.bytes = bytes
        self.spec = Outcome(events: events, retry: retry)
        self.openAPIRuntime = openAPIRuntime
        self.verdict = verdict
    }

    init(_ name: String, _ text: String, _ events: [Outcome.Event], retry: Int64? = nil, openAPIRuntime: Outcome? = nil, verdict: String = "") {
        self.init(name, Array(text.utf8), events, retry: retry, openAPIRuntime: openAPIRuntime, verdict: verdict)
    }
}

private func event(_ data: String, type: String = "message", id: String = "") -> Outcome.Event {
    Outcome.Event(type: type, data: data, lastEventID: id)
}

/// The cases, each checked in several chunkings (whole, one byte at a time, and for the short
/// ones every split into two pieces): the result must not depend on where the chunks were cut.
let corpus: [CorpusCase] = [
    // Line endings (spec: "end-of-line = ( cr lf / cr / lf )").
    CorpusCase("LF line endings", "data: a\n\n", [event("a")]),
    CorpusCase("CRLF line endings", "data: a\r\ndata: b\r\n\r\n", [event("a\nb")]),
    CorpusCase("CR-only line endings", "data: a\rdata: b\r\r", [event("a\nb")]),
    CorpusCase("mixed line endings", "data: a\r\ndata: b\rdata: c\n\r\n", [event("a\nb\nc")]),
    CorpusCase("LF then CR ends two lines", "data: a\n\rdata: b\n\n", [event("a"), event("b")]),
    CorpusCase("CR CR LF is a line and a blank line", "data: a\r\r\ndata: b\n\n", [event("a"), event("b")]),
    CorpusCase("a CR as the stream's last byte ends the line", "data: a\n\r", [event("a")]),
    CorpusCase("blank lines alone dispatch nothing", "\n\n\r\n\r\r", []),

    // Byte order mark ("One leading U+FEFF BYTE ORDER MARK character must be ignored if any
    // are present"; UTF-8 decode strips it).
    CorpusCase(
        "a leading BOM is stripped", "\u{FEFF}data: a\n\n", [event("a")],
        openAPIRuntime: Outcome(events: []),
        verdict: "theirs: the BOM stays in the first line, so its field name is \"\\u{FEFF}data\", an unknown field, and the first event is lost. Spec: UTF-8 decode strips one leading BOM (HTML 9.2.5/9.2.6; Encoding, 'UTF-8 decode')."
    ),
    CorpusCase("only one BOM is stripped", "\u{FEFF}\u{FEFF}data: a\n\ndata: b\n\n", [event("b")]),
    CorpusCase("a BOM elsewhere is data", "data: a\u{FEFF}\n\n", [event("a\u{FEFF}")]),

    // Fields.
    CorpusCase("one space after the colon is removed, no more", "data:a\ndata:  b\ndata: \n\n", [event("a\n b\n")]),
    CorpusCase("an empty data line keeps a line break", "data: a\ndata:\n\n", [event("a\n")]),
    CorpusCase("data with no value dispatches empty data", "data:\n\n", [event("")]),
    CorpusCase(
        "a field with no colon has an empty value (data)", "data\ndata\n\n", [event("\n")],
        openAPIRuntime: Outcome(events: []),
        verdict: "theirs: a line without a colon is skipped. Spec: 'Otherwise, the string is not empty but does not contain a U+003A COLON character: process the field using the whole line as the field name, and the empty string as the field value', so two bare `data` lines make the data \"\\n\"."
    ),
    CorpusCase("values keep their colons", "data: a: b:c\n\n", [event("a: b:c")]),
    CorpusCase("comments are ignored", ": hi\n:\ndata: x\n: between\n\n", [event("x")]),
    CorpusCase("unknown fields are ignored; names are case-sensitive and exact", "foo: bar\nData: y\ndata : z\ndata: x\n\n", [event("x")]),

    // Event type.
    CorpusCase("event names the type", "event: e\ndata: x\n\n", [event("x", type: "e")]),
    CorpusCase("the type resets after each dispatch", "event: e\ndata: x\n\ndata: y\n\n", [event("x", type: "e"), event("y")]),
    CorpusCase("a data-less block's type does not carry over", "event: e\n\ndata: x\n\n", [event("x")]),
    CorpusCase("an empty event name is message", "event:\ndata: x\n\n", [event("x")]),
    CorpusCase("a bare event line is message", "event\ndata: x\n\n", [event("x")]),

    // Last event ID.
    CorpusCase("the last event ID persists across events", "id: 1\ndata: a\n\ndata: b\n\n", [event("a", id: "1"), event("b", id: "1")]),
    CorpusCase("an id-only block sets the last event ID", "id: 5\n\ndata: x\n\n", [event("x", id: "5")]),
    CorpusCase("an empty id resets it", "id: 1\ndata: a\n\nid:\ndata: b\n\n", [event("a", id: "1"), event("b")]),
    CorpusCase(
        "a bare id line resets it", "id: 1\ndata: a\n\nid\ndata: b\n\n", [event("a", id: "1"), event("b")],
        openAPIRuntime: Outcome(events: [event("a", id: "1"), event("b", id: "1")]),
        verdict: "theirs: the bare `id` line is skipped (same cause as bare `data`), so the ID is not reset. Spec: field `id` with the empty value sets the last event ID buffer to the empty string."
    ),
    CorpusCase(
        "an id containing NUL is ignored", "id: 1\ndata: a\n\nid: 2\u{0}3\ndata: b\n\n", [event("a", id: "1"), event("b", id: "1")],
        openAPIRuntime: Outcome(events: [event("a", id: "1"), event("b", id: "2\u{0}3")]),
        verdict: "theirs: the id is taken as it is. Spec: 'If the field value does not contain U+0000 NULL, then set the last event ID buffer to the field value. Otherwise, ignore the field.' (A NUL could not be sent back in Last-Event-ID.)"
    ),

    // Retry.
    CorpusCase("retry sets the reconnection time", "retry: 1500\ndata: x\n\n", [event("x")], retry: 1500),
    CorpusCase("retry needs no data", "retry: 700\n\n", [], retry: 700),
    CorpusCase(
        "retry counts before its event is complete", "data: x\n\nretry: 700\n", [event("x")], retry: 700,
        openAPIRuntime: Outcome(events: [event("x")]),
        verdict: "theirs: retry is a property of the next emitted event, so one in an event the stream never finishes is lost. Spec: the field is processed when its line is read ('set the event stream's reconnection time to that integer'), not at dispatch. Minor."
    ),
    CorpusCase("retry is ignored unless all ASCII digits", "retry: 1000\n\nretry: 12a\n\nretry:  5\n\nretry: \n\nretry\n\n", [], retry: 1000),
    CorpusCase(
        "retry with a plus sign is ignored", "retry: 1000\n\nretry: +5\n\n", [], retry: 1000,
        openAPIRuntime: Outcome(events: [], retry: 5),
        verdict: "theirs: parses with Int64(_:), which takes a sign. Spec: 'If the field value consists of only ASCII digits…; Otherwise, ignore the field.'"
    ),
    CorpusCase(
        "negative retry is ignored", "retry: 1000\n\nretry: -5\n\n", [], retry: 1000,
        openAPIRuntime: Outcome(events: [], retry: -5),
        verdict: "theirs: Int64(\"-5\") gives a negative reconnection time to the app. Spec: not all ASCII digits, ignore the field."
    ),
    CorpusCase(
        "retry past Int64 milliseconds", "retry: 1000\n\nretry: 99999999999999999999\n\n", [], retry: Int64.max,
        openAPIRuntime: Outcome(events: [], retry: 1000),
        verdict: "theirs: Int64 overflow, the field is ignored; ours saturates to Int64.max ms. Spec: all digits, so it sets the time; no bound is given. Neither is wrong in practice (about 292 million years)."
    ),

    // Text.
    CorpusCase("invalid UTF-8 becomes U+FFFD", Array("data: ".utf8) + [0xFF, 0xFE] + Array("a\n\n".utf8), [event("\u{FFFD}\u{FFFD}a")]),
    CorpusCase("multi-byte characters split anywhere", "data: é🎉日本\n\n", [event("é🎉日本")]),
    CorpusCase("combining marks are kept as sent", "data: e\u{301}\n\n", [event("e\u{301}")]),
    CorpusCase("U+2028 and NEL are not line breaks", "data: a\u{2028}b\u{85}c\n\n", [event("a\u{2028}b\u{85}c")]),
    CorpusCase("NUL in data is kept", "data: a\u{0}b\n\n", [event("a\u{0}b")]),

    // End of stream ("If the file ends in the middle of an event, before the final empty line,
    // the incomplete event is not dispatched").
    CorpusCase("an incomplete last event is discarded", "data: a\n\ndata: b\n", [event("a")]),
    CorpusCase("an unterminated last line is discarded", "data: a\n\ndata: b", [event("a")]),

    // Size.
    CorpusCase("a 100 KB line", "data: " + String(repeating: "x", count: 100_000) + "\n\n", [event(String(repeating: "x", count: 100_000))]),
]

/// Ours: `EventStreamParser`, fed chunk by chunk, then `finish()`.
func decodeWithEventStreamKit(_ chunks: [ArraySlice<UInt8>]) throws -> Outcome {
    var parser = EventStreamParser()
    var outcome = Outcome()
    for chunk in chunks {
        for element in try parser.parse(chunk) {
            switch element {
            case .event(let event): outcome.events.append(Outcome.Event(event))
            case .retry(let interval): outcome.retry = interval.saturatedMilliseconds
            case .comment: break
            }
        }
    }
    parser.finish()
    return outcome
}

/// Theirs: `asDecodedServerSentEvents()` over an `HTTPBody` of the chunks, read as an app
/// would have to: an event with `data == nil` is not dispatched (the spec's "if the data
/// buffer is empty, return"), `id` updates the last event ID (theirs is per event, the
/// spec's persists), and a nil or empty `event` is `message`.
func decodeWithOpenAPIRuntime(_ chunks: [ArraySlice<UInt8>]) async throws -> Outcome {
    let (stream, continuation) = AsyncStream<ArraySlice<UInt8>>.makeStream()
    for chunk in chunks { continuation.yield(chunk) }
    continuation.finish()
    return try await messages(of: HTTPBody(stream, length: .unknown).asDecodedServerSentEvents())
}

/// An app's view of openapi-runtime's events; see `decodeWithOpenAPIRuntime`.
func messages<Events: AsyncSequence>(of events: Events) async throws -> Outcome where Events.Element == OpenAPIRuntime.ServerSentEvent {
    var outcome = Outcome()
    var lastEventID = ""
    for try await event in events {
        if let id = event.id { lastEventID = id }
        if let retry = event.retry { outcome.retry = retry }
        guard let data = event.data else { continue }
        let type = event.event.flatMap { $0.isEmpty ? nil : $0 } ?? "message"
        outcome.events.append(Outcome.Event(type: type, data: data, lastEventID: lastEventID))
    }
    return outcome
}

extension Duration {
    var saturatedMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        let (ms, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, overflow2) = ms.addingReportingOverflow(attoseconds / 1_000_000_000_000_000)
        return overflow2 ? .max : sum
    }
}

/// The chunkings a case is fed in.
func chunkings(of bytes: [UInt8]) -> [(name: String, chunks: [ArraySlice<UInt8>])] {
    var result: [(String, [ArraySlice<UInt8>])] = [("whole", [bytes[...]])]
    if bytes.count <= 256 {
        result.append(("one byte at a time", bytes.indices.map { bytes[$0...$0] }))
        for cut in 1..<max(bytes.count, 1) {
            result.append(("split at \(cut)", [bytes[..<cut], bytes[cut...]]))
        }
    } else {
        result.append(("1,000-byte chunks", stride(from: 0, to: bytes.count, by: 1000).map { bytes[$0..<min($0 + 1000, bytes.count)] }))
    }
    return result
}

/// Runs every case through both decoders in every chunking. Ours must match the spec;
/// theirs must match the spec or the difference recorded in the case. Returns the failures,
/// one list per failed case.
func runCorpus() async -> [[String]] {
    var failures: [[String]] = []
    var agreed = 0
    var oursWrong = 0
    var differences: [(CorpusCase, Outcome)] = []
    for testCase in corpus {
        var theirsSeen: Outcome?
        var caseFailures: [String] = []
        for (chunking, chunks) in chunkings(of: testCase.bytes) {
            do {
                let ours = try decodeWithEventStreamKit(chunks)
                if ours != testCase.spec {
                    if !caseFailures.contains(where: { $0.hasPrefix("EventStreamKit") }) { oursWrong += 1 }
                    caseFailures.append("EventStreamKit, \(chunking): \(ours), spec: \(testCase.spec)")
                }
                let theirs = try await decodeWithOpenAPIRuntime(chunks)
                if let seen = theirsSeen, seen != theirs {
                    caseFailures.append("openapi-runtime depends on chunking: \(chunking) gave \(theirs), whole gave \(seen)")
                }
                theirsSeen = theirsSeen ?? theirs
            } catch {
                caseFailures.append("\(chunking): threw \(error)")
            }
        }
        if let theirs = theirsSeen, caseFailures.isEmpty {
            if theirs == testCase.spec {
                agreed += 1
                if testCase.openAPIRuntime != nil {
                    print("  note: openapi-runtime now follows the spec on '\(testCase.name)'; the recorded difference can go")
                }
            } else if theirs == testCase.openAPIRuntime {
                differences.append((testCase, theirs))
            } else {
                caseFailures.append("openapi-runtime: \(theirs), spec: \(testCase.spec) (a difference not recorded here)")
            }
        }
        if !caseFailures.isEmpty { failures.append(caseFailures.prefix(3).map { "corpus '\(testCase.name)': \($0)" }) }
    }
    print("== corpus: \(corpus.count) streams, each whole, byte by byte and split at every point")
    print("  EventStreamKit matches the spec on \(corpus.count - oursWrong) of \(corpus.count)")
    print("  openapi-runtime agrees with the spec on \(agreed); differs, as recorded, on \(differences.count):")
    for (testCase, theirs) in differences {
        print("  - \(testCase.name): \(String(decoding: testCase.bytes.prefix(60), as: UTF8.self).debugDescription)")
        print("      spec:            \(testCase.spec)")
        print("      openapi-runtime: \(theirs)")
        print("      \(testCase.verdict)")
    }
    for failure in failures.flatMap(\.self) { print("FAIL \(failure)") }
    return failures
}
