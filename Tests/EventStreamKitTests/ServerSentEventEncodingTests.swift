import EventStreamKit
import Testing

private func text(_ event: ServerSentEvent) -> String {
    String(decoding: event.encoded, as: UTF8.self)
}

@Suite("ServerSentEvent encoding")
struct ServerSentEventEncodingTests {
    @Test func fieldsInOrder() throws {
        let event = try ServerSentEvent(id: "42", event: "greeting", data: "hello", retry: .seconds(3), comments: ["hi"])
        #expect(text(event) == ": hi\nid: 42\nevent: greeting\nretry: 3000\ndata: hello\n\n")
    }

    @Test(arguments: [
        ("a\nb", "data: a\ndata: b\n\n"),
        ("a\rb", "data: a\ndata: b\n\n"),
        ("a\r\nb", "data: a\ndata: b\n\n"),
        ("a\n\nb", "data: a\ndata:\ndata: b\n\n"),
        ("a\n", "data: a\ndata:\n\n"),
        ("", "data:\n\n"),
        (" leading", "data:  leading\n\n"),
        ("\r\n\r", "data:\ndata:\ndata:\n\n"),
    ])
    func lineBreaksInDataBecomeSeveralDataLines(data: String, expected: String) throws {
        #expect(text(try ServerSentEvent(data: data)) == expected)
    }

    @Test func retryIsWholeMilliseconds() throws {
        #expect(text(try ServerSentEvent(data: nil, retry: .milliseconds(1500))) == "retry: 1500\n\n")
        #expect(text(try ServerSentEvent(data: nil, retry: .microseconds(2999))) == "retry: 2\n\n")
    }

    @Test func negativeRetryIsRejected() {
        let error = #expect(throws: WireError.self) { try ServerSentEvent(data: "x", retry: .seconds(-1)) }
        #expect(error?.code == .invalidRetry)
    }

    @Test func idOnlyEventEndsWithABlankLine() throws {
        #expect(text(try ServerSentEvent(id: "7", data: nil)) == "id: 7\n\n")
        #expect(text(try ServerSentEvent(id: "", data: nil)) == "id:\n\n")
    }

    @Test func commentOnlyFrameHasNoBlankLine() {
        #expect(text(.comment("keep-alive")) == ": keep-alive\n")
        #expect(text(.comment("two\nlines")) == ": two\n: lines\n")
        #expect(text(.comment("")) == ":\n")
    }

    @Test(arguments: ["a\nb", "a\rb", "a\r\n", "\n"])
    func eventNameWithLineBreakIsRejected(name: String) {
        let error = #expect(throws: WireError.self) { try ServerSentEvent(event: name, data: "x") }
        #expect(error?.code == .invalidEventName)
        #expect(error?.description.contains("CR or LF") == true)
    }

    @Test(arguments: ["a\nb", "a\rb", "\r\n", "a\u{0}b"])
    func idWithLineBreakOrNULIsRejected(id: String) {
        let error = #expect(throws: WireError.self) { try ServerSentEvent(id: id, data: "x") }
        #expect(error?.code == .invalidID)
    }

    @Test func nulInAnEventNameIsAllowed() throws {
        // The spec ignores only an *id* with NUL; a name with NUL reaches the client intact.
        var parser = EventStreamParser()
        let parsed = try parser.parse(try ServerSentEvent(event: "a\u{0}b", data: "x").encoded)
        #expect(parsed == [.event(.init(type: "a\u{0}b", data: "x"))])
    }

    @Test func aPayloadCannotInjectFieldsOrEvents() throws {
        let hostile = "x\n\nevent: evil\nid: 666\ndata: injected\r\n\r\nretry: 1\r: c"
        var parser = EventStreamParser()
        let parsed = try parser.parse(try ServerSentEvent(data: hostile).encoded)
        let normalized = "x\n\nevent: evil\nid: 666\ndata: injected\n\nretry: 1\n: c"
        #expect(parsed == [.event(.init(data: normalized))])
        #expect(parser.lastEventID == "")
    }

    @Test func frameHoldsTheEncodedBytes() throws {
        let event = try ServerSentEvent(event: "tick", data: "1")
        let frame = EventFrame(event)
        #expect(frame.bytes == event.encoded)
        #expect(frame.count == 21)
        #expect(EventFrame(comment: "hb").bytes == ": hb\n".bytes)
    }
}
