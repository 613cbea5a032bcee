import EventStreamKit
import Testing

@Suite("EventStreamWriter")
struct EventStreamWriterTests {
    @Test func sendsBufferUntilFlushThenGoOutInOneWrite() async throws {
        let sink = RecordingSink()
        var writer = EventStreamWriter(sink: sink)
        writer.retry(.seconds(5))
        try writer.send(42, as: .text, id: "1", event: "answer")
        writer.send(EventFrame(try ServerSentEvent(data: "framed")))
        writer.comment("still here")
        #expect(sink.chunks.isEmpty)
        #expect(writer.bufferedByteCount > 0)
        try await writer.flush()
        #expect(sink.chunks.count == 1)
        #expect(sink.text == "retry: 5000\n\nid: 1\nevent: answer\ndata: 42\n\ndata: framed\n\n: still here\n")
        #expect(writer.bufferedByteCount == 0)
        try await writer.flush()  // nothing buffered: no empty write
        #expect(sink.chunks.count == 1)
    }

    @Test func closeSendsAFinalEmptyEventAndFlushes() async throws {
        let sink = RecordingSink()
        var writer = EventStreamWriter(sink: sink)
        writer.send(try ServerSentEvent(data: "last"))
        try await writer.close()
        #expect(sink.text == "data: last\n\nevent: close\ndata:\n\n")
        var parser = EventStreamParser()
        #expect(try parser.parse(sink.bytes).last == .event(.init(type: "close", data: "")))
    }

    @Test func aFailedMarshalBuffersNothing() async throws {
        struct Boom: Error {}
        let sink = RecordingSink()
        var writer = EventStreamWriter(sink: sink)
        #expect(throws: WireError.self) { try writer.send(1, as: EventMarshal<Int> { _ in throw Boom() }) }
        #expect(writer.bufferedByteCount == 0)
    }

    @Test func aSinkErrorReachesTheCaller() async throws {
        let sink = RecordingSink()
        sink.fail()
        var writer = EventStreamWriter(sink: sink)
        writer.comment("x")
        await #expect(throws: RecordingSink.Closed.self) { try await writer.flush() }
    }
}
