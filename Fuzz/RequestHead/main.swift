// libFuzzer entry point for the HTTP request-head parser. Compiled together with the
// parser's own source files by Fuzz/run.sh; see Fuzz/README.md.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequestHead(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let limits = HTTPRequestHeadParser.Limits(maxHeadSize: 1024, maxHeaderCount: 16)
    do {
        switch try HTTPRequestHeadParser.parse(bytes, limits: limits) {
        case .incomplete:
            // Incomplete means: not over the limit yet (empty lines before the request line
            // do not count). Anything longer must have been refused with 431.
            let afterBlankLines = bytes.drop { $0 == 13 || $0 == 10 }
            precondition(afterBlankLines.count <= limits.maxHeadSize, "buffered \(afterBlankLines.count) bytes past the limit")
        case .complete(let head, let consumed):
            precondition(consumed > 0 && consumed <= size, "consumed \(consumed) of \(size)")
            precondition(consumed <= limits.maxHeadSize + 8, "a head over the limit was accepted")
            precondition(head.headers.fields.count <= limits.maxHeaderCount, "too many fields accepted")
            precondition(!head.method.isEmpty && (head.target.hasPrefix("/") || head.target == "*"), "bad request line accepted")
            _ = head.path
            _ = head.query
            _ = head.keepAlive
            // Splitting the input must not change the outcome once the whole head is there.
            if case .complete(_, let again)? = try? HTTPRequestHeadParser.parse(Array(bytes[..<consumed]), limits: limits) {
                precondition(again == consumed, "a head parses differently without what follows it")
            }
        }
    } catch {
        precondition([400, 431, 505].contains(error.status.code), "unexpected status \(error.status.code)")
    }
    return 0
}
