import EventStreamHTTP
import EventStreamKit
import InteropSupport
import Foundation
import OpenAPIRuntime
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

typealias WireEvent = EventStreamKit.ServerSentEvent
typealias DecodedEvent = OpenAPIRuntime.ServerSentEvent

struct Note: Codable, Hashable, Sendable {
    var title: String
    var count: Int
    var tags: [String]
}

/// Check 1: swift-openapi-runtime's SSE decoder reads a live stream from EventStreamKit's
/// `HTTPServer` and hub, and agrees, event for event, with what was sent and with our own
/// `EventSource` reading the same hub; then both parsers are run over a corpus of edge cases
/// (`Corpus.swift`) and compared with the WHATWG spec.
///
/// Prints what it checked and `N passed, N failed`; exits 1 on any failure.
@main
struct OpenAPIReadsHub {
    static func main() async {
        let started = ContinuousClock.now
        var liveFailures: [String]
        do {
            liveFailures = try await withTimeout(.seconds(60)) { try await liveStream() }
        } catch {
            liveFailures = ["live stream: \(error)"]
        }
        for failure in liveFailures { print("FAIL \(failure)") }

        let corpusFailures = await runCorpus()

        print("== \(ContinuousClock.now - started) in all")
        let failed = (liveFailures.isEmpty ? 0 : 1) + corpusFailures.count
        print("\(1 + corpus.count - failed) passed, \(failed) failed")
        let failures = liveFailures + corpusFailures.flatMap(\.self)
        exit(failures.isEmpty ? 0 : 1)
    }
}

/// The events sent to the text readers, in order. Each kind a real stream carries: IDs the
/// hub makes and IDs given, names, multi-line data with every kind of line break, `retry`,
/// comments, unicode, empty data, a reset ID, an ID alone, a large event.
func textEvents() throws -> [WireEvent] {
    [
        try WireEvent(data: "hello"),
        try WireEvent(id: "custom-7", event: "update", data: "line one\nline two\n\nline four"),
        try WireEvent(event: "breaks", data: "crlf\r\nthen cr\ronly\nthen lf"),
        try WireEvent(data: "ends with a line break\n"),
        try WireEvent(id: "идентификатор-1", event: "ünïcode", data: "héllo wörld 🎉 日本語, e\u{301} combining, \u{2028} line separator, \u{85} NEL"),
        try WireEvent(data: " leading space, then key: value: more"),
        try WireEvent(data: ":not a comment"),
        try WireEvent(id: "r1", data: "with a retry", retry: .milliseconds(1234)),
        try WireEvent(data: ""),
        try WireEvent(event: "commented", data: "after two comments", comments: ["a comment", "a comment on\ntwo lines"]),
        try WireEvent(event: "name: with a colon", data: "x"),
        try WireEvent(id: "", data: "after the ID was reset"),
        try WireEvent(id: "id-only", data: nil),
        try WireEvent(data: "nul\u{0}inside"),
        try WireEvent(event: "big", data: (0..<3).map { String(repeating: Character(String($0)), count: 70_000) }.joined(separator: "\n")),
    ]
}

let theEnd = "the end"

func liveStream() async throws -> [String] {
    var failures: [String] = []
    func expect(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition { failures.append("live stream: \(message())") }
    }

    var hubConfiguration = EventServer<String>.Configuration()
    hubConfiguration.retry = .milliseconds(2500)  // sent as a retry-only block when a stream opens
    hubConfiguration.heartbeatInterval = .milliseconds(20)  // comments between the events
    hubConfiguration.reconnectSpread = .milliseconds(500)
    let hub = EventServer<String>(configuration: hubConfiguration)
    var router = HTTPRouter()
    router.events("/events", from: hub, channels: { Set($0.query["channels"].map { [$0] } ?? []) }) { request in
        guard let who = request.query["who"] else { throw HTTPError(.unauthorized) }
        return who
    }
    var serverConfiguration = HTTPServer.Configuration(host: "127.0.0.1", port: 0)
    serverConfiguration.logger = .silent
    let server = try HTTPServer(router: router, configuration: serverConfiguration)
    let serverTask = Task { await server.run() }
    let hubTask = Task { await hub.run() }
    defer {
        server.shutdown()
        hubTask.cancel()
    }
    let base = "http://127.0.0.1:\(server.port)/events"
    print("== live stream: HTTPServer on 127.0.0.1:\(server.port), read by openapi-runtime and by EventSource")

    // Reader 1: openapi-runtime, every event, to the end of the body.
    let text = StreamingGet(URL(string: base + "?who=openapi")!, headers: ["Accept": "text/event-stream"])
    let head = try await text.response()
    expect(head.statusCode == 200, "status \(head.statusCode)")
    let contentType = head.value(forHTTPHeaderField: "Content-Type") ?? ""
    expect(contentType.lowercased().hasPrefix("text/event-stream"), "Content-Type \(contentType)")
    // The server delimits a stream by closing it: no chunked framing for a client to undo.
    expect(head.value(forHTTPHeaderField: "Transfer-Encoding") == nil, "Transfer-Encoding \(head.value(forHTTPHeaderField: "Transfer-Encoding") ?? "")")
    expect(head.value(forHTTPHeaderField: "Content-Length") == nil, "Content-Length on a stream")
    let textReader = Task { () throws -> [DecodedEvent] in
        var events: [DecodedEvent] = []
        for try await event in text.body.asDecodedServerSentEvents() { events.append(event) }
        return events
    }

    // Reader 2: openapi-runtime with JSON data, on a channel of its own, until `[DONE]`.
    let json = StreamingGet(URL(string: base + "?who=openapi-json&channels=json")!)
    _ = try await json.response()
    let jsonReader = Task { () throws -> [ServerSentEventWithJSONData<Note>] in
        defer { json.cancel() }
        var events: [ServerSentEventWithJSONData<Note>] = []
        let done = ArraySlice("[DONE]".utf8)
        for try await event in json.body.asDecodedServerSentEventsWithJSONData(of: Note.self, while: { $0 != done }) {
            events.append(event)
        }
        return events
    }

    // Reader 3: ours, until the last event.
    let source = try EventSource(url: base + "?who=ours")
    let ourReader = Task { () throws -> [MessageEvent] in
        var events: [MessageEvent] = []
        for try await event in source {
            events.append(event)
            if event.data == theEnd { break }
        }
        return events
    }

    let deadline = ContinuousClock.now + .seconds(10)
    while await hub.clientCount < 3 {
        guard ContinuousClock.now < deadline else { throw Failure("3 clients did not connect within 10 s") }
        try await Task.sleep(for: .milliseconds(10))
    }

    // The JSON channel: typed notes, then the terminator an OpenAI-style API sends.
    let noteType = try EventType<Note>("note", marshal: .json())
    let notes = [
        Note(title: "first", count: 1, tags: []),
        Note(title: "ünïcode \"quoted\" \\ 🎉\nnewline", count: -2, tags: ["a", "b"]),
        Note(title: "third", count: 3, tags: ["c"]),
    ]
    var expectedJSON = [ServerSentEventWithJSONData<Note>(retry: 2500)]
    for note in notes {
        let id = try await hub.send(note, as: noteType, to: .channel("json"))
        expectedJSON.append(ServerSentEventWithJSONData(event: "note", data: note, id: id))
    }
    try await hub.send(WireEvent(data: "[DONE]"), to: .channel("json"))

    // The text readers.
    let readers: Recipients<String> = .only(["openapi", "ours"])
    var expected = [DecodedEvent(retry: 2500)]
    var expectedOurs: [MessageEvent] = []
    var lastEventID = ""
    func note(_ event: WireEvent, id: String) {
        let data = event.data.map { String(decoding: normalizingLineBreaks($0), as: UTF8.self) }
        expected.append(DecodedEvent(id: id, event: event.event, data: data, retry: event.retry.map(\.saturatedMilliseconds)))
        lastEventID = id
        if let data { expectedOurs.append(MessageEvent(type: event.event ?? "message", data: data, lastEventID: lastEventID)) }
    }
    for (index, event) in try textEvents().enumerated() {
        note(event, id: try await hub.send(event, to: readers))
        // Quiet for more than two heartbeat ticks: the second finds the stream idle.
        if index % 4 == 0 { try await Task.sleep(for: .milliseconds(50)) }
    }
    await hub.comment("a standalone comment", to: readers)
    let sortedKeys = JSONEncoder()
    sortedKeys.outputFormatting = .sortedKeys  // the same bytes each time it encodes
    let typed = try EventType<Note>("typed", marshal: .json(encoder: sortedKeys))
    let id = try await hub.send(notes[1], as: typed, to: readers)
    note(try WireEvent(id: id, event: "typed", bytes: try typed.marshal.encode(notes[1])), id: id)
    await hub.setRetry(.milliseconds(4000))  // to every stream: a retry-only block
    expected.append(DecodedEvent(retry: 4000))
    let last = try WireEvent(data: theEnd)
    note(last, id: try await hub.send(last, to: readers))

    let ours = try await ourReader.value
    let jsonEvents = try await jsonReader.value
    // The shutdown ends each stream with a jittered retry (4000 ms + up to the 500 ms spread).
    server.shutdown()
    await serverTask.value
    let decoded = try await textReader.value

    // openapi-runtime, event by event, against what was sent.
    expect(decoded.count == expected.count + 1, "openapi-runtime decoded \(decoded.count) events, \(expected.count + 1) were sent")
    for (index, (got, sent)) in zip(decoded, expected).enumerated() where got != sent {
        expect(false, "event \(index): openapi-runtime decoded \(describe(got)), sent \(describe(sent))")
    }
    if let final = decoded.last, decoded.count == expected.count + 1 {
        let isShutdownRetry = final.id == nil && final.event == nil && final.data == nil && (4000..<4500).contains(final.retry ?? 0)
        expect(isShutdownRetry, "the last block is \(describe(final)), not the shutdown's retry")
    }
    expect(jsonEvents == expectedJSON, "JSON reader: \(jsonEvents), expected \(expectedJSON)")

    // Ours, against what was sent, and against openapi-runtime's events read as an app would.
    expect(ours == expectedOurs, "EventSource read \(ours.count) events, not the \(expectedOurs.count) sent: first difference at \(zip(ours, expectedOurs).enumerated().first { $0.element.0 != $0.element.1 }.map { "event \($0.offset)" } ?? "the end")")
    let theirsAsMessages = try await messages(of: AsyncStream<DecodedEvent> { continuation in
        for event in decoded { continuation.yield(event) }
        continuation.finish()
    })
    expect(theirsAsMessages.events == ours.map(Outcome.Event.init), "openapi-runtime and EventSource disagree on the dispatched events")
    expect(theirsAsMessages.retry == decoded.last?.retry, "the reconnection time")

    // The raw bytes: heartbeats and comments were there between the events, and our parser
    // makes of them what EventSource made of its own connection.
    let raw = text.received
    let lines = raw.split(separator: 10, omittingEmptySubsequences: false)
    let heartbeats = lines.filter { $0.elementsEqual([58]) }.count
    let comments = lines.filter { $0.first == 58 && $0.count > 1 }.count
    expect(heartbeats > 0, "no heartbeat in the stream")
    expect(comments == 4, "\(comments) comment lines in the stream, 4 sent")
    let parsed = try decodeWithEventStreamKit([raw[...]])
    expect(parsed.events == ours.map(Outcome.Event.init), "EventStreamParser on openapi-runtime's bytes disagrees with EventSource")

    let bytes = decoded.reduce(0) { $0 + ($1.data?.utf8.count ?? 0) }
    print("  openapi-runtime: \(decoded.count) events (\(bytes) bytes of data) equal to those sent, with ids, names and retry (\(raw.count) bytes, \(heartbeats) heartbeats and \(comments) comments between them); JSON channel: \(jsonEvents.count) typed events, stopped at [DONE]")
    print("  EventSource: \(ours.count) events, equal to those sent and to openapi-runtime's")
    return failures
}

/// What a client reads back from data it was sent: CR, LF and CRLF all become LF.
func normalizingLineBreaks(_ bytes: [UInt8]) -> [UInt8] {
    var result: [UInt8] = []
    result.reserveCapacity(bytes.count)
    var index = 0
    while index < bytes.count {
        if bytes[index] == 13 {
            result.append(10)
            if index + 1 < bytes.count && bytes[index + 1] == 10 { index += 1 }
        } else {
            result.append(bytes[index])
        }
        index += 1
    }
    return result
}

func describe(_ event: DecodedEvent) -> String {
    let data = event.data.map { $0.count > 60 ? "\($0.prefix(40).debugDescription)… (\($0.utf8.count) bytes)" : $0.debugDescription } ?? "nil"
    return "{id \(event.id?.debugDescription ?? "nil"), event \(event.event?.debugDescription ?? "nil"), data \(data), retry \(event.retry.map(String.init) ?? "nil")}"
}

