import EventStreamKit
import Foundation
import Testing

private struct Note: Codable, Sendable, Equatable {
    var title: String
    var body: String
}

private struct Boom: Error {}

@Suite("EventMarshal")
struct EventMarshalTests {
    @Test func jsonRoundTripsThroughTheParser() throws {
        let note = Note(title: "Hi", body: "line one\nline two")
        let event = try EventMarshal<Note>.json().event(note, id: "1", event: "note")
        var parser = EventStreamParser()
        guard case .event(let received)? = try parser.parse(event.encoded).first else {
            Issue.record("no event parsed")
            return
        }
        #expect(received.type == "note")
        #expect(try JSONDecoder().decode(Note.self, from: Data(received.data.utf8)) == note)
    }

    @Test func prettyPrintedJSONSurvivesAsSeveralDataLines() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let note = Note(title: "a", body: "b")
        let event = try EventMarshal<Note>.json(encoder: encoder).event(note)
        #expect(event.encoded.filter { $0 == 10 }.count > 3)
        var parser = EventStreamParser()
        guard case .event(let received)? = try parser.parse(event.encoded).first else {
            Issue.record("no event parsed")
            return
        }
        #expect(try JSONDecoder().decode(Note.self, from: Data(received.data.utf8)) == note)
    }

    @Test func textCoversStringsAndNumbers() throws {
        #expect(try EventMarshal<String>.text.encode("héllo") == "héllo".bytes)
        #expect(try EventMarshal<Int>.text.encode(-42) == "-42".bytes)
        #expect(try EventMarshal<Double>.text.encode(1.5) == "1.5".bytes)
        #expect(try EventMarshal<Bool>.text.encode(true) == "true".bytes)
    }

    @Test func bytesPassThrough() throws {
        #expect(try EventMarshal<[UInt8]>.bytes.encode([1, 2, 3]) == [1, 2, 3])
    }

    @Test func customClosure() throws {
        let upper = EventMarshal<String> { Array($0.uppercased().utf8) }
        #expect(try upper.event("abc").text == "ABC")
    }

    @Test func aThrowingClosureSurfacesAsMarshalFailed() {
        let failing = EventMarshal<Int> { _ in throw Boom() }
        let error = #expect(throws: WireError.self) { try failing.event(1) }
        #expect(error?.code == .marshalFailed)
        #expect(error?.underlying is Boom)
        #expect(error?.description.contains("Int") == true)
    }

    @Test func anInvalidNameIsReportedEvenWhenTheValueEncodes() {
        let error = #expect(throws: WireError.self) { try EventMarshal<Int>.text.event(1, event: "a\nb") }
        #expect(error?.code == .invalidEventName)
    }
}
