import EventStreamKit
import Testing

/// Random events with everything that is hard for the wire format: unicode, CR, LF,
/// CRLF, empty lines, leading spaces and colons.
private struct EventGenerator {
    var random: SeededGenerator

    private static let pieces = [
        "a", "Z", "0", " ", ":", ": ", "\n", "\r", "\r\n", "\n\n", "data:", "id: 9", "event:",
        "retry: 1", "é", "日本", "🎉", "\u{FEFF}", "\t", "\u{0}", "\\", "\"",
    ]

    mutating func string(maxPieces: Int, excluding excluded: Set<Character> = []) -> String {
        var text = ""
        for _ in 0..<Int.random(in: 0...maxPieces, using: &random) {
            text += Self.pieces.randomElement(using: &random)!
        }
        return String(text.unicodeScalars.filter { !excluded.contains(Character($0)) })
    }

    mutating func event() -> ServerSentEvent {
        let id = Bool.random(using: &random) ? string(maxPieces: 3, excluding: ["\r", "\n", "\u{0}"]) : nil
        let name = Int.random(in: 0..<3, using: &random) == 0 ? string(maxPieces: 3, excluding: ["\r", "\n"]) : nil
        let retry = Int.random(in: 0..<5, using: &random) == 0 ? Duration.milliseconds(Int.random(in: 0...100_000, using: &random)) : nil
        let comments = Int.random(in: 0..<4, using: &random) == 0 ? [string(maxPieces: 4)] : []
        return try! ServerSentEvent(id: id, event: name, data: string(maxPieces: 12), retry: retry, comments: comments)
    }
}

/// Every line break (CRLF, CR, LF) as LF: how a client reads text back.
private func normalized(_ text: String) -> String {
    text.replacingAll("\r\n", with: "\n").replacingAll("\r", with: "\n")
}

private extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        var bytes = Array(utf8)
        let t = Array(target.utf8), r = Array(replacement.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            if i + t.count <= bytes.count && Array(bytes[i..<i + t.count]) == t {
                out += r
                i += t.count
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        bytes = out
        return String(decoding: bytes, as: UTF8.self)
    }
}

private func lines(_ text: String) -> [String] {
    normalized(text).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
}

@Suite("Wire properties")
struct WirePropertyTests {
    @Test("encode then parse gives back every event, retry and comment", arguments: 0..<20)
    func roundTrip(seed: UInt64) throws {
        var generator = EventGenerator(random: SeededGenerator(seed: seed))
        var lastID = ""
        var expected: [EventStreamParser.Element] = []
        var stream: [UInt8] = []
        for _ in 0..<200 {
            let event = generator.event()
            event.encode(into: &stream)
            expected += event.comments.flatMap(lines).map { .comment($0) }
            if let retry = event.retry { expected.append(.retry(retry)) }
            if let id = event.id { lastID = id }
            let data = normalized(event.text!)
            expected.append(.event(MessageEvent(type: (event.event ?? "").isEmpty ? "message" : event.event!, data: data, lastEventID: lastID)))
        }
        var parser = EventStreamParser()
        #expect(try parser.parse(stream) == expected, "seed \(seed)")
        #expect(parser.lastEventID == lastID)
    }

    @Test("any chunking of a valid stream yields the same events", arguments: 0..<20)
    func chunkingOfEncodedStream(seed: UInt64) throws {
        var generator = EventGenerator(random: SeededGenerator(seed: seed))
        var stream: [UInt8] = [0xEF, 0xBB, 0xBF]
        for _ in 0..<100 { generator.event().encode(into: &stream) }
        try expectChunkingInvariance(stream, seed: seed, limits: .init())
    }

    @Test("any chunking of arbitrary bytes yields the same elements and errors", arguments: 0..<40)
    func chunkingOfArbitraryBytes(seed: UInt64) throws {
        var random = SeededGenerator(seed: seed)
        // Field names, separators, every line break, multi-byte and truncated UTF-8, NUL, BOM.
        let alphabet: [[UInt8]] = ["data", "id", "event", "retry", ":", " ", "\r", "\n", "\r\n", "x", "12", "é", "🎉", "\u{0}", "\u{FEFF}"]
            .map(\.bytes) + [[0xC3], [0xFF]]
        var stream: [UInt8] = []
        for _ in 0..<Int.random(in: 0...400, using: &random) { stream += alphabet.randomElement(using: &random)! }
        // Small limits, so that some streams hit them.
        try expectChunkingInvariance(stream, seed: seed, limits: .init(maxLineLength: 40, maxEventSize: 60))
    }

    private func expectChunkingInvariance(_ stream: [UInt8], seed: UInt64, limits: EventStreamParser.Limits) throws {
        func run(_ chunks: [[UInt8]]) -> (elements: [EventStreamParser.Element], error: WireError.Code?, lastID: String) {
            var parser = EventStreamParser(limits: limits)
            var elements: [EventStreamParser.Element] = []
            do {
                for chunk in chunks {
                    try parser.parse(chunk, into: &elements)
                }
            } catch {
                return (elements, error.code, parser.lastEventID)
            }
            parser.finish()
            return (elements, nil, parser.lastEventID)
        }
        let whole = run([stream])
        var random = SeededGenerator(seed: seed &* 31 &+ 7)
        for maxChunk in [1, 2, 3, 5, 17, 64] {
            let split = run(stream.randomChunks(maxChunk: maxChunk, using: &random))
            #expect(split.elements == whole.elements, "seed \(seed), max chunk \(maxChunk)")
            #expect(split.error == whole.error, "seed \(seed), max chunk \(maxChunk)")
            #expect(split.lastID == whole.lastID, "seed \(seed), max chunk \(maxChunk)")
        }
        #expect(run(stream.map { [$0] }).elements == whole.elements, "seed \(seed), byte by byte")
    }
}

extension WirePropertyTests {
    @Test("no name, ID or payload can inject a field or an event: bad names and IDs throw, the rest round-trip alone", arguments: 0..<10)
    func noInjection(seed: UInt64) throws {
        var generator = EventGenerator(random: SeededGenerator(seed: seed))
        for _ in 0..<300 {
            let id = generator.string(maxPieces: 3)
            let name = generator.string(maxPieces: 3)
            let data = generator.string(maxPieces: 8)
            let idIsValid = !id.unicodeScalars.contains { $0 == "\r" || $0 == "\n" || $0 == "\u{0}" }
            let nameIsValid = !name.unicodeScalars.contains { $0 == "\r" || $0 == "\n" }
            guard let event = try? ServerSentEvent(id: id, event: name, data: data) else {
                #expect(!(idIsValid && nameIsValid), "refused a valid event: id \(id.debugDescription), name \(name.debugDescription)")
                continue
            }
            #expect(idIsValid && nameIsValid, "accepted id \(id.debugDescription), name \(name.debugDescription)")
            // Whatever came before on the stream, this event reads back as exactly itself.
            var parser = EventStreamParser()
            let elements = try parser.parse(Array("data: before\n\n".utf8) + event.encoded)
            #expect(elements == [
                .event(MessageEvent(data: "before")),
                .event(MessageEvent(type: name.isEmpty ? "message" : name, data: normalized(data), lastEventID: id)),
            ], "seed \(seed)")
        }
    }
}
