// libFuzzer entry point for the built-in client's whole response path: the response decoder
// (head, interim responses, framing, chunked decoding) and the event-stream parser behind it,
// fed arbitrary bytes in arbitrary chunks. Compiled with their source files by Fuzz/run.sh;
// see Fuzz/README.md.
//
// The first input byte picks the chunk sizes, so the fuzzer explores splits too.
// Properties: no crash; the same head, body, events and verdict for the input whole and split;
// never more body bytes than input bytes; the decoder's buffered head stays within its limit.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzClientResponse(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let seed = Int(data[0])
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let whole = run([bytes])
    var chunks: [[UInt8]] = []
    var index = 0
    var step = seed % 13 + 1
    while index < bytes.count {
        let end = min(bytes.count, index + step)
        chunks.append(Array(bytes[index..<end]))
        index = end
        step = (step * 7 + seed) % 29 + 1
    }
    let split = run(chunks)
    precondition(whole == split, "the split changed the outcome: \(whole) vs \(split)")
    return 0
}

private struct Outcome: Equatable {
    var status: Int?
    var body: [UInt8] = []
    var events: [MessageEvent] = []
    var retries: [Duration] = []
    var failure: String?
    var parserFailure: String?
    var ended = false
}

private func run(_ chunks: [[UInt8]]) -> Outcome {
    let limits = HTTPHeadScanner.Limits(maxHeadSize: 1024, maxHeaderCount: 16)
    var decoder = HTTPClientResponseDecoder(limits: limits)
    var parser = EventStreamParser(limits: .init(maxLineLength: 512, maxEventSize: 2048))
    var outcome = Outcome()
    var parserFailure: String?
    var elements: [EventStreamParser.Element] = []
    let total = chunks.reduce(0) { $0 + $1.count }
    do {
        for chunk in chunks {
            var body: [UInt8] = []
            // What was decoded before an error is still handed on, as the client would.
            var failure: (any Error)?
            do {
                try chunk.withUnsafeBytes { raw in
                    if decoder.head == nil {
                        _ = try decoder.feedHead(raw, body: &body)
                    } else {
                        try decoder.decodeBody(raw, into: &body)
                    }
                }
            } catch {
                failure = error
            }
            outcome.body += body
            // Once the parser has failed it gets nothing more, but the body is still decoded:
            // the two verdicts are independent, and both must not depend on the split.
            if parserFailure == nil {
                elements.removeAll()
                do {
                    try parser.parse(body, into: &elements)
                } catch {
                    parserFailure = "\(error)"
                }
                for element in elements {
                    switch element {
                    case .event(let event): outcome.events.append(event)
                    case .retry(let delay): outcome.retries.append(delay)
                    case .comment: break
                    }
                }
            }
            if let failure { throw failure }
        }
        try decoder.endOfInput()
        parser.finish()
    } catch {
        outcome.failure = "\(error)"
    }
    outcome.parserFailure = parserFailure
    outcome.status = decoder.head?.status
    outcome.ended = decoder.isAtEnd
    precondition(outcome.body.count <= total, "decoded more body bytes than were given")
    if let status = outcome.status { precondition((200...999).contains(status), "final status \(status)") }
    return outcome
}
