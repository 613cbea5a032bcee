// libFuzzer entry point for the server's connection input: the bytes a client sends, in
// random chunks, through the request decoder that `HTTPServer` reads every connection with,
// then each decoded request's path and a header echoed into a response. Compiled with the
// HTTP layer's pure source files by Fuzz/run.sh; see Fuzz/README.md.
//
// The first byte picks the chunk sizes (1 + byte % 8, cycling with the byte's bits), the
// rest is the connection's input. Properties:
// - the decoder never holds more than the head limit plus one chunk while a head is pending,
//   nor more than the body limit plus one chunk while a body is;
// - the same requests and the same refusal whatever the chunking (compared with one chunk);
// - every refusal is a status the server answers with (400, 413, 417, 431, 501, 505);
// - a response that echoes request data in a header either is refused (nil) or parses back
//   with exactly its fields: nothing a client sends can split a response.

private let limits = HTTPRequestDecoder.Limits(head: .init(maxHeadSize: 1024, maxHeaderCount: 16), maxBodySize: 2048)

private enum Outcome: Equatable {
    case request(String, String, [UInt8])
    case refused(Int)
}

private func run(_ input: ArraySlice<UInt8>, chunkSizes: [Int]) -> [Outcome] {
    var decoder = HTTPRequestDecoder(limits: limits)
    var outcomes: [Outcome] = []
    var offset = input.startIndex
    var turn = 0
    var pending: (HTTPRequestHead, HTTPRequestDecoder.Framing)?
    while true {
        do {
            while true {
                if pending == nil {
                    pending = try decoder.nextHead()
                    if pending == nil {
                        precondition(decoder.buffered <= limits.head.maxHeadSize, "a pending head holds \(decoder.buffered) bytes, over the limit")
                    }
                }
                guard let (head, framing) = pending else { break }
                precondition(framing.bodyLength <= limits.maxBodySize, "a body over the limit was accepted")
                guard let body = decoder.takeBody(count: framing.bodyLength) else {
                    precondition(decoder.buffered < framing.bodyLength)
                    break
                }
                outcomes.append(.request(head.method, head.target, body))
                checkEcho(head)
                pending = nil
            }
        } catch {
            precondition([400, 413, 417, 431, 501, 505].contains(error.status.code), "unexpected status \(error.status.code)")
            outcomes.append(.refused(error.status.code))
            return outcomes
        }
        guard offset < input.endIndex else { return outcomes }
        let size = min(chunkSizes[turn % chunkSizes.count], input.endIndex - offset)
        turn += 1
        input[offset..<(offset + size)].withUnsafeBytes { decoder.append($0) }
        offset += size
    }
}

/// A handler that echoes the path and a header into its response's fields.
private func checkEcho(_ head: HTTPRequestHead) {
    var response = HTTPResponse(status: .ok, text: "x")
    response.headers.add("X-Path", head.path)
    response.headers.add("X-Echo", head.headers["X-Echo"] ?? "")
    guard let bytes = response.serialized(minorVersion: head.minorVersion, isHead: false, keepAlive: head.keepAlive) else {
        precondition(head.path.utf8.contains { $0 == 13 || $0 == 10 || $0 == 0 } || (head.headers["X-Echo"] ?? "").utf8.contains { $0 == 0 },
                     "a harmless response was refused")
        return
    }
    guard let end = (0..<(bytes.count - 3)).first(where: { bytes[$0..<($0 + 4)].elementsEqual([13, 10, 13, 10]) }) else {
        preconditionFailure("no end of head")
    }
    let headBytes = bytes[..<end]
    precondition(headBytes.indices.allSatisfy { headBytes[$0] != 10 || headBytes[$0 - 1] == 13 }, "a bare LF in the head")
    let lines = headBytes.split(separator: 10).map { String(decoding: $0.dropLast($0.last == 13 ? 1 : 0), as: UTF8.self) }
    let names = lines.dropFirst().map { String($0.prefix { $0 != ":" }) }
    precondition(names == ["Content-Type", "X-Path", "X-Echo", "Date", "Content-Length"] + (head.keepAlive ? [] : ["Connection"]),
                 "the response's fields are not what the handler set: \(names)")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConnection(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let selector = Int(bytes[0])
    let sizes = (0..<4).map { 1 + (selector >> (2 * $0)) % 8 }
    let input = bytes[1...]
    let whole = run(input, chunkSizes: [Int.max])
    let chunked = run(input, chunkSizes: sizes)
    precondition(whole == chunked, "chunking \(sizes) changed the outcome: \(whole) vs \(chunked)")
    return 0
}
