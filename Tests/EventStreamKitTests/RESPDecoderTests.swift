@testable import EventStreamKit
import Testing

/// Any RESP2 value as Redis would send it.
private func encode(_ value: RESPValue) -> [UInt8] {
    switch value {
    case .simpleString(let text): Array("+\(text)\r\n".utf8)
    case .error(let text): Array("-\(text)\r\n".utf8)
    case .integer(let number): Array(":\(number)\r\n".utf8)
    case .bulkString(nil): Array("$-1\r\n".utf8)
    case .bulkString(let bytes?): Array("$\(bytes.count)\r\n".utf8) + bytes + [13, 10]
    case .array(nil): Array("*-1\r\n".utf8)
    case .array(let elements?): Array("*\(elements.count)\r\n".utf8) + elements.flatMap(encode)
    }
}

private func decodeAll(_ chunks: [[UInt8]], limits: RESPDecoder.Limits = .init()) throws(RESPError) -> [RESPValue] {
    var decoder = RESPDecoder(limits: limits)
    var values: [RESPValue] = []
    for chunk in chunks {
        decoder.feed(chunk)
        while let value = try decoder.next() { values.append(value) }
    }
    return values
}

private func randomValue(depth: Int, using generator: inout SeededGenerator) -> RESPValue {
    let text = { (generator: inout SeededGenerator) -> String in
        String((0..<Int.random(in: 0...12, using: &generator)).map { _ in "abcXYZ 09:-_é".randomElement(using: &generator)! })
    }
    switch Int.random(in: 0..<(depth > 0 ? 7 : 5), using: &generator) {
    case 0: return .simpleString(text(&generator))
    case 1: return .error("ERR " + text(&generator))
    case 2: return .integer(Int64.random(in: .min ... .max, using: &generator))
    case 3: return .bulkString((0..<Int.random(in: 0...40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) })
    case 4: return Bool.random(using: &generator) ? .bulkString(nil) : .array(nil)
    default: return .array((0..<Int.random(in: 0...5, using: &generator)).map { _ in randomValue(depth: depth - 1, using: &generator) })
    }
}

@Suite("RESPDecoder")
struct RESPDecoderTests {
    @Test("the examples of the RESP2 specification", arguments: [
        ("+OK\r\n", RESPValue.simpleString("OK")),
        ("-ERR unknown command 'asdf'\r\n", .error("ERR unknown command 'asdf'")),
        (":1000\r\n", .integer(1000)),
        (":-52\r\n", .integer(-52)),
        ("$5\r\nhello\r\n", .bulkString(Array("hello".utf8))),
        ("$0\r\n\r\n", .bulkString([])),
        ("$-1\r\n", .bulkString(nil)),
        ("$6\r\na\r\nb\r\n\r\n", .bulkString(Array("a\r\nb\r\n".utf8))),  // binary-safe: CRLF inside
        ("*0\r\n", .array([])),
        ("*-1\r\n", .array(nil)),
        ("*2\r\n$5\r\nhello\r\n$5\r\nworld\r\n", .array([.bulkString(Array("hello".utf8)), .bulkString(Array("world".utf8))])),
        ("*3\r\n:1\r\n:2\r\n:3\r\n", .array([.integer(1), .integer(2), .integer(3)])),
        ("*2\r\n*3\r\n:1\r\n:2\r\n:3\r\n*2\r\n+Hello\r\n-World\r\n", .array([.array([.integer(1), .integer(2), .integer(3)]), .array([.simpleString("Hello"), .error("World")])])),
        ("*3\r\n$3\r\nfoo\r\n$-1\r\n$3\r\nbar\r\n", .array([.bulkString(Array("foo".utf8)), .bulkString(nil), .bulkString(Array("bar".utf8))])),
    ])
    func specification(text: String, expected: RESPValue) throws {
        #expect(try decodeAll([Array(text.utf8)]) == [expected])
    }

    @Test("random replies, pipelined, split at random: the same values whatever the split", arguments: [1, 2, 3, 4] as [UInt64])
    func anySplit(seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        let values = (0..<200).map { _ in randomValue(depth: 4, using: &generator) }
        let bytes = values.flatMap(encode)
        #expect(try decodeAll([bytes]) == values)
        #expect(try decodeAll(bytes.map { [$0] }) == values, "one byte at a time")
        for maxChunk in [2, 7, 64, 1000] {
            #expect(try decodeAll(bytes.randomChunks(maxChunk: maxChunk, using: &generator)) == values, "chunks up to \(maxChunk)")
        }
    }

    @Test("commands are arrays of bulk strings, binary-safe")
    func commandEncoding() throws {
        #expect(RESPValue.command(["SET", "key", "a b"]) == Array("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$3\r\na b\r\n".utf8))
        let binary: [[UInt8]] = [Array("XADD".utf8), [0, 13, 10, 255], []]
        #expect(try decodeAll([RESPValue.command(binary)]) == [.array(binary.map { .bulkString($0) })])
    }

    @Test("malformed replies are refused, and the decoder stays failed", arguments: [
        "?x\r\n", "$-2\r\n", "*-5\r\n", ":12a\r\n", ":\r\n", ":-\r\n", ":99999999999999999999\r\n", ":9223372036854775808\r\n",
        "+a\rb\r\n", "+a\nb\r\n", "$3\r\nabcd\r\n", "$3\r\nabc\n\n", "$+3\r\nabc\r\n", "* 1\r\n:1\r\n",
    ])
    func malformed(text: String) {
        var decoder = RESPDecoder()
        decoder.feed(Array(text.utf8))
        #expect(throws: RESPError.self) { _ = try decoder.next() }
        decoder.feed(Array("+OK\r\n".utf8))
        #expect(throws: RESPError.self, "stays failed") { _ = try decoder.next() }
    }

    @Test("the largest Int64 and the smallest are read exactly")
    func integerBounds() throws {
        #expect(try decodeAll([Array(":9223372036854775807\r\n:-9223372036854775807\r\n".utf8)]) == [.integer(.max), .integer(-.max)])
    }

    @Test("a bulk string over the limit is refused from its header, before its bytes arrive")
    func bulkLimit() {
        var limits = RESPDecoder.Limits()
        limits.maxBulkLength = 1000
        #expect(throws: RESPError.self) { _ = try decodeAll([Array("$1001\r\n".utf8)], limits: limits) }
        #expect((try? decodeAll([Array("$1000\r\n".utf8) + Array(repeating: 120, count: 1000) + [13, 10]], limits: limits))?.count == 1)
    }

    @Test("arrays: too many elements, or nested too deep, are refused from their headers")
    func arrayLimits() {
        var limits = RESPDecoder.Limits()
        limits.maxArrayLength = 10
        limits.maxDepth = 3
        #expect(throws: RESPError.self) { _ = try decodeAll([Array("*11\r\n".utf8)], limits: limits) }
        #expect(throws: RESPError.self) { _ = try decodeAll([Array("*1\r\n*1\r\n*1\r\n*1\r\n".utf8)], limits: limits) }
        #expect((try? decodeAll([Array("*1\r\n*1\r\n*1\r\n:1\r\n".utf8)], limits: limits)) == [.array([.array([.array([.integer(1)])])])])
    }

    @Test("a line that never ends is refused once over the limit, fed a byte at a time")
    func endlessLine() {
        var limits = RESPDecoder.Limits()
        limits.maxLineLength = 100
        var decoder = RESPDecoder(limits: limits)
        var failedAt: Int?
        for index in 0..<1000 {
            decoder.feed(index == 0 ? [UInt8(ascii: "+")] : [UInt8(ascii: "x")])
            do {
                _ = try decoder.next()
            } catch {
                failedAt = index
                break
            }
        }
        #expect(failedAt.map { $0 <= 102 } == true, "failed at byte \(String(describing: failedAt))")
    }

    @Test("a reply of millions of small values is bounded like one of long strings: each value costs valueCost")
    func manySmallValuesAreBounded() {
        var limits = RESPDecoder.Limits()
        limits.maxReplyBytes = 1 << 20
        // 40,000 integers of 4 bytes each on the wire: 160 KB sent, 1.3 MB charged.
        let reply = RESPValue.array((0..<1000).map { _ in .array((0..<40).map { _ in .integer(1) }) })
        #expect(throws: RESPError.self) { _ = try decodeAll([encode(reply)], limits: limits) }
        let small = RESPValue.array((0..<100).map { _ in .integer(1) })
        #expect((try? decodeAll([encode(small)], limits: limits)) == [small])
    }

    @Test("a reply holding more bytes than the reply limit is refused")
    func replyLimit() {
        var limits = RESPDecoder.Limits()
        // Ten strings of 10 bytes, and 11 values (the array and its strings) at valueCost.
        limits.maxReplyBytes = 100 + 11 * RESPDecoder.valueCost
        let reply = RESPValue.array((0..<11).map { _ in .bulkString(Array(repeating: 65, count: 10)) })
        #expect(throws: RESPError.self) { _ = try decodeAll([encode(reply)], limits: limits) }
        let fits = RESPValue.array((0..<10).map { _ in .bulkString(Array(repeating: 65, count: 10)) })
        #expect((try? decodeAll([encode(fits), encode(fits)], limits: limits)) == [fits, fits], "the count starts again per reply")
    }

    @Test("nothing is held between replies")
    func nothingHeld() throws {
        var decoder = RESPDecoder()
        decoder.feed(Array("+OK\r\n:1\r\n".utf8))
        #expect(try decoder.next() == .simpleString("OK"))
        #expect(try decoder.next() == .integer(1))
        #expect(try decoder.next() == nil)
        #expect(decoder.bufferedCount == 0)
        decoder.feed(Array("$5\r\nhel".utf8))
        #expect(try decoder.next() == nil)
        decoder.feed(Array("lo\r\n".utf8))
        #expect(try decoder.next() == .bulkString(Array("hello".utf8)))
        #expect(decoder.bufferedCount == 0)
    }
}
