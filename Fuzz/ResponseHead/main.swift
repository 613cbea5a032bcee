// libFuzzer entry point for the client's HTTP response parsing: the response-head parser and
// the chunked body decoder. Compiled with their source files by Fuzz/run.sh; see Fuzz/README.md.
//
// Properties: no crash; an accepted head is within the limits and has a three-digit status;
// the chunked decoder gives the same body and the same verdict for any split of its input,
// and never more body bytes than it was given.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzResponseHead(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let limits = HTTPHeadScanner.Limits(maxHeadSize: 1024, maxHeaderCount: 16)
    var body = bytes[...]
    do {
        switch try HTTPResponseHeadParser.parse(bytes, limits: limits) {
        case .incomplete:
            precondition(bytes.count <= limits.maxHeadSize, "buffered \(bytes.count) bytes past the limit")
        case .complete(let head, let consumed):
            precondition(consumed > 0 && consumed <= min(size, limits.maxHeadSize + 2), "consumed \(consumed) of \(size)")
            precondition((100...999).contains(head.status), "status \(head.status)")
            precondition(head.headers.fields.count <= limits.maxHeaderCount, "too many fields accepted")
            _ = try? head.framing()
            body = bytes[consumed...]
        }
    } catch {
        precondition(error.code == .invalidResponse, "unexpected error \(error)")
    }

    let whole = decode([Array(body)])
    var chunks: [[UInt8]] = []
    var index = body.startIndex
    var step = 1
    while index < body.endIndex {
        let end = min(body.endIndex, index + step)
        chunks.append(Array(body[index..<end]))
        index = end
        step = step % 7 + 1
    }
    let split = decode(chunks)
    precondition(whole.output == split.output && whole.failed == split.failed && whole.complete == split.complete, "chunking changed the decoded body")
    precondition(whole.output.count <= body.count, "decoded more bytes than were given")
    return 0
}

private func decode(_ chunks: [[UInt8]]) -> (output: [UInt8], failed: Bool, complete: Bool) {
    var decoder = ChunkedBodyDecoder()
    var output: [UInt8] = []
    for chunk in chunks {
        do {
            try chunk.withUnsafeBytes { try decoder.decode($0, into: &output) }
        } catch {
            return (output, true, false)
        }
    }
    return (output, false, decoder.isComplete)
}
