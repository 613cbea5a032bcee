import EventStreamKit
import Testing

/// Parses `input` in one chunk, then ends the stream.
private func parseAll(_ input: [UInt8], limits: EventStreamParser.Limits = .init()) throws -> [EventStreamParser.Element] {
    var parser = EventStreamParser(limits: limits)
    let elements = try parser.parse(input)
    parser.finish()
    return elements
}

private func events(_ input: String) throws -> [MessageEvent] {
    try parseAll(input.bytes).compactMap { if case .event(let event) = $0 { event } else { nil } }
}

@Suite("EventStreamParser: the WHATWG event stream interpretation")
struct EventStreamParserTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let input: String
        let expected: [MessageEvent]
        var testDescription: String { name }
    }

    static let specCases: [Case] = [
        Case(name: "spec example: data lines join with LF",
             input: "data: YHOO\ndata: +2\ndata: 10\n\n",
             expected: [.init(data: "YHOO\n+2\n10")]),
        Case(name: "spec example: id persists, bare id resets it, last event without blank line is dropped",
             input: ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n",
             expected: [.init(data: "first event", lastEventID: "1"), .init(data: "second event", lastEventID: "")]),
        Case(name: "spec example: bare data field gives empty data; incomplete last event dropped",
             input: "data\n\ndata\ndata\n\ndata:",
             expected: [.init(data: ""), .init(data: "\n")]),
        Case(name: "spec example: the space after the colon is optional",
             input: "data:test\n\ndata: test\n\n",
             expected: [.init(data: "test"), .init(data: "test")]),
        Case(name: "only one leading space is removed",
             input: "data:  two spaces\n\n",
             expected: [.init(data: " two spaces")]),
        Case(name: "event field sets the type; type resets after dispatch",
             input: "event: add\ndata: 73857293\n\ndata: 2\n\n",
             expected: [.init(type: "add", data: "73857293"), .init(data: "2")]),
        Case(name: "type resets at a blank line even without data",
             input: "event: add\n\ndata: 2\n\n",
             expected: [.init(data: "2")]),
        Case(name: "empty event field means message",
             input: "event:\ndata: x\n\n",
             expected: [.init(data: "x")]),
        Case(name: "CRLF line endings",
             input: "data: a\r\ndata: b\r\n\r\n",
             expected: [.init(data: "a\nb")]),
        Case(name: "CR line endings",
             input: "data: a\rdata: b\r\r",
             expected: [.init(data: "a\nb")]),
        Case(name: "mixed line endings",
             input: "data: a\r\ndata: b\rdata: c\n\r\n",
             expected: [.init(data: "a\nb\nc")]),
        Case(name: "a BOM at the start is stripped once",
             input: "\u{FEFF}data: a\n\n",
             expected: [.init(data: "a")]),
        Case(name: "a second BOM is part of the first field name",
             input: "\u{FEFF}\u{FEFF}data: a\n\ndata: b\n\n",
             expected: [.init(data: "b")]),
        Case(name: "a BOM later in the stream is data",
             input: "data: \u{FEFF}a\n\n",
             expected: [.init(data: "\u{FEFF}a")]),
        Case(name: "id with NUL is ignored",
             input: "id: 1\ndata: a\n\nid: 2\u{0}3\ndata: b\n\n",
             expected: [.init(data: "a", lastEventID: "1"), .init(data: "b", lastEventID: "1")]),
        Case(name: "id is kept even by an event that is not dispatched",
             input: "id: 5\n\ndata: later\n\n",
             expected: [.init(data: "later", lastEventID: "5")]),
        Case(name: "id set after data in the same event counts for it",
             input: "data: a\nid: 9\n\n",
             expected: [.init(data: "a", lastEventID: "9")]),
        Case(name: "field names are case sensitive; unknown fields are ignored",
             input: "Data: no\nfoo: bar\ndata: yes\n\n",
             expected: [.init(data: "yes")]),
        Case(name: "comments are not data",
             input: ": hello\ndata: a\n:\n\n",
             expected: [.init(data: "a")]),
        Case(name: "a colon in the value is kept",
             input: "data: a: b\n\n",
             expected: [.init(data: "a: b")]),
        Case(name: "no events without a blank line",
             input: "data: a\ndata: b\n",
             expected: []),
    ]

    @Test(arguments: specCases)
    func specCase(_ testCase: Case) throws {
        #expect(try events(testCase.input) == testCase.expected)
    }

    @Test func invalidUTF8BecomesReplacementCharacters() throws {
        let input: [UInt8] = Array("data: a".utf8) + [0xFF, 0xC3] + Array("\ndata: \u{E9}\n\n".utf8)
        let parsed = try parseAll(input)
        #expect(parsed == [.event(.init(data: "a\u{FFFD}\u{FFFD}\n\u{E9}"))])
    }

    @Test func retryCountsOnlyWhenAllDigits() throws {
        let parsed = try parseAll("retry: 1500\nretry: 10a\nretry:\nretry: -1\nretry: 2.5\nretry:7\n".bytes)
        #expect(parsed == [.retry(.milliseconds(1500)), .retry(.milliseconds(7))])
    }

    @Test func retryThatOverflowsSaturates() throws {
        var parser = EventStreamParser()
        _ = try parser.parse("retry: 99999999999999999999999\n".bytes)
        #expect(parser.reconnectionTime == .milliseconds(Int64.max))
    }

    @Test func commentsAreReported() throws {
        #expect(try parseAll(": ping\n:\n:  two\n".bytes) == [.comment("ping"), .comment(""), .comment(" two")])
    }

    @Test func lastEventIDIsUpdatedAtDispatchNotAtTheIDLine() throws {
        var parser = EventStreamParser()
        _ = try parser.parse("id: 1\n\nid: 2\ndata: x\n".bytes)
        #expect(parser.lastEventID == "1")
        parser.finish()  // the incomplete event with id 2 is discarded
        #expect(parser.lastEventID == "1")
    }

    @Test func lastEventIDCarriesOverToANewStream() throws {
        var parser = EventStreamParser(lastEventID: "41")
        #expect(try parser.parse("data: a\n\n".bytes) == [.event(.init(data: "a", lastEventID: "41"))])
    }

    @Test func finishDiscardsTheIncompleteEventAndRestartsTheStream() throws {
        var parser = EventStreamParser()
        _ = try parser.parse("event: x\ndata: lost\n".bytes)
        parser.finish()
        // A new stream: its BOM is stripped again, and the discarded type does not leak.
        #expect(try parser.parse("\u{FEFF}data: kept\n\n".bytes) == [.event(.init(data: "kept"))])
    }

    @Test func crAtTheEndOfAChunkAndLFAtTheStartOfTheNextAreOneLineBreak() throws {
        var parser = EventStreamParser()
        var all = try parser.parse("data: a\r".bytes)
        all += try parser.parse("\ndata: b\r".bytes)
        all += try parser.parse("\n\r".bytes)
        all += try parser.parse("\n".bytes)
        // Had either LF counted as a blank line, "a" and "b" would be separate events.
        #expect(all == [.event(.init(data: "a\nb"))])
    }

    @Test func aBOMSplitAcrossChunksIsStripped() throws {
        var parser = EventStreamParser()
        var all = try parser.parse([0xEF])
        all += try parser.parse([0xBB])
        all += try parser.parse([0xBF] + "data: a\n\n".bytes)
        #expect(all == [.event(.init(data: "a"))])
    }

    @Test func aBOMPrefixThatIsNotABOMIsKept() throws {
        var parser = EventStreamParser()
        var all = try parser.parse([0xEF, 0xBB])
        all += try parser.parse(": x\ndata: a\n\n".bytes)
        // The line is "\u{EF}\u{BB}: x": a field with an unknown name, not a comment.
        #expect(all == [.event(.init(data: "a"))])
    }

    @Test("an id over the length limit is ignored, as one with NUL: the last event ID stays what it was")
    func anOverlongIDIsIgnored() throws {
        let limits = EventStreamParser.Limits(maxEventIDLength: 8)
        var parser = EventStreamParser(limits: limits)
        let elements = try parser.parse("id: 12345678\ndata: a\n\nid: 123456789\ndata: b\n\n".bytes)
        #expect(elements.compactMap { if case .event(let event) = $0 { event.lastEventID } else { nil } } == ["12345678", "12345678"])
        #expect(EventStreamParser.Limits().maxEventIDLength == 4096)
    }

    @Test func aLineLongerThanTheLimitThrowsWhicheverWayItIsChunked() throws {
        let limits = EventStreamParser.Limits(maxLineLength: 16, maxEventSize: 1 << 20)
        let input = "data: 0123456789\n\ndata: 0123456789ABC\n\n".bytes  // 16, then 19 bytes
        for chunkSize in [1, 3, 7, input.count] {
            var parser = EventStreamParser(limits: limits)
            var received: [EventStreamParser.Element] = []
            var thrown: WireError?
            do {
                for start in stride(from: 0, to: input.count, by: chunkSize) {
                    let chunk = Array(input[start..<min(input.count, start + chunkSize)])
                    try parser.parse(chunk, into: &received)
                }
            } catch {
                thrown = error
            }
            #expect(thrown?.code == .lineTooLong, "chunk size \(chunkSize)")
            #expect(received == [.event(.init(data: "0123456789"))], "chunk size \(chunkSize)")
            // A parser that failed keeps failing rather than resuming mid-stream.
            #expect(throws: WireError.self) { try parser.parse("data: x\n\n".bytes) }
        }
    }

    @Test func anUnterminatedLineCannotGrowPastTheLimit() throws {
        var parser = EventStreamParser(limits: .init(maxLineLength: 1024, maxEventSize: 1 << 20))
        let chunk = [UInt8](repeating: 65, count: 100)
        let error = #expect(throws: WireError.self) {
            for _ in 0..<100 { _ = try parser.parse(chunk) }
        }
        #expect(error?.code == .lineTooLong)
        #expect(error?.description.contains("1024") == true)
    }

    @Test func anEventLargerThanTheLimitThrows() throws {
        let limits = EventStreamParser.Limits(maxLineLength: 100, maxEventSize: 20)
        let error = #expect(throws: WireError.self) {
            _ = try parseAll("data: 0123456789\ndata: 0123456789\n\n".bytes, limits: limits)  // 21 bytes joined
        }
        #expect(error?.code == .eventTooLarge)
        // Exactly at the limit is fine.
        #expect(try parseAll("data: 0123456789\ndata: 012345678\n\n".bytes, limits: limits).count == 1)
    }
}
