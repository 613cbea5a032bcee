// libFuzzer entry point for the SSE parser. Compiled with the parser's own source files by
// Fuzz/run.sh; see Fuzz/README.md.
//
// The first byte seeds the chunking; the rest is the stream. Properties: no crash; the
// elements (and a limit error, if any) do not depend on where the chunks were cut; every
// dispatched event's data respects the size limit; what the limits refuse stays refused.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEventStream(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let seed = data[0]
    let stream = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let limits = EventStreamParser.Limits(maxLineLength: 512, maxEventSize: 1024)

    let whole = parse([stream], limits: limits)
    var chunks: [[UInt8]] = []
    var state = UInt32(seed) &* 2_654_435_761 | 1
    var start = 0
    while start < stream.count {
        state = state &* 1_103_515_245 &+ 12_345
        let length = Int(state >> 16) % 9  // 0...8: empty chunks and splits between CR and LF
        chunks.append(Array(stream[start..<min(stream.count, start + length)]))
        start += length
    }
    let split = parse(chunks, limits: limits)
    precondition(whole.elements == split.elements, "chunking changed the events")
    precondition(whole.error == split.error, "chunking changed the error")
    for case .event(let event) in whole.elements {
        precondition(event.data.utf8.count <= limits.maxEventSize * 3, "an event over the limit was dispatched")
    }
    return 0
}

private func parse(_ chunks: [[UInt8]], limits: EventStreamParser.Limits) -> (elements: [EventStreamParser.Element], error: String?) {
    var parser = EventStreamParser(limits: limits)
    var elements: [EventStreamParser.Element] = []
    for chunk in chunks {
        do {
            try parser.parse(chunk, into: &elements)
        } catch {
            // After a limit error the parser keeps failing.
            var more: [EventStreamParser.Element] = []
            precondition((try? parser.parse([10, 10], into: &more)) == nil, "the parser recovered after an error")
            return (elements, error.description)
        }
    }
    parser.finish()
    return (elements, nil)
}
