import EventStreamKit
import Testing

/// The README's example, kept here so that it compiles and says what it prints.
@Suite("README example")
struct ReadmeExampleTests {
    struct Note: Codable, Sendable { var title: String }

    @Test func wireExample() throws {
        let event = try ServerSentEvent(id: "7", event: "greeting", data: "hello\nworld")
        let frame = EventFrame(event)
        #expect(String(decoding: frame.bytes, as: UTF8.self) == "id: 7\nevent: greeting\ndata: hello\ndata: world\n\n")

        let note = try EventMarshal<Note>.json().event(Note(title: "Hi"), event: "note")

        var parser = EventStreamParser()
        var printed: [String] = []
        for element in try parser.parse(frame.bytes + note.encoded) {
            if case .event(let message) = element {
                printed.append("\(message.type) \(message.data) \(message.lastEventID)")
            }
        }
        #expect(printed == ["greeting hello\nworld 7", "note {\"title\":\"Hi\"} 7"])
    }
}
