@testable import EventStreamKit
import Synchronization
import Testing

@Suite("HTTPLogger: escaping")
struct HTTPLoggerEscapingTests {
    /// A message and how it must come out; named by the latter, so that the test's own
    /// report prints no raw control characters.
    struct Case: Sendable, CustomTestStringConvertible {
        let message: String
        let expected: String
        var testDescription: String { expected.isEmpty ? "(empty)" : expected }
    }

    @Test("control characters become visible escapes, everything else is untouched", arguments: [
        Case(message: "GET /a\r\n[EventStreamKit] error: forged", expected: #"GET /a\r\n[EventStreamKit] error: forged"#),
        Case(message: "line\nfeed", expected: #"line\nfeed"#),
        Case(message: "nul\u{0}byte", expected: #"nul\x00byte"#),
        Case(message: "\u{1B}[31mred\u{1B}[0m", expected: #"\x1B[31mred\x1B[0m"#),
        Case(message: "tab\there, delete\u{7F}", expected: #"tab\there, delete\x7F"#),
        Case(message: "separator\u{2028}paragraph\u{2029}", expected: #"separator\u{2028}paragraph\u{2029}"#),
        Case(message: "C1 next line\u{85} and \u{9B}", expected: #"C1 next line\u{85} and \u{9B}"#),
        Case(message: "café – naïve → 日本語 🎉 \u{A0}§ \u{2027}\u{202A}", expected: "café – naïve → 日本語 🎉 \u{A0}§ \u{2027}\u{202A}"),
        Case(message: "", expected: ""),
    ])
    func escapes(_ example: Case) {
        #expect(HTTPLogger.escapingControlCharacters(example.message) == example.expected)
    }

    @Test("a custom closure gets the escaped message")
    func customClosuresGetEscapedMessages() {
        let received = Mutex<[String]>([])
        let logger = HTTPLogger { _, message in received.withLock { $0.append(message) } }
        logger(.info, "404 GET /x\r\nHost: forged")
        #expect(received.withLock { $0 } == [#"404 GET /x\r\nHost: forged"#])
    }
}
