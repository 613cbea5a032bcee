// libFuzzer entry point for the Redis reply decoder. Compiled with the decoder's own source
// files by Fuzz/run.sh; see Fuzz/README.md.
//
// The first byte seeds the chunking; the rest is what a Redis server (or anyone posing as
// one) sends. Properties: no crash; the values and the verdict do not depend on where the
// chunks were cut; a decoder that failed stays failed; no value holds more string bytes (or,
// for simple strings, scalars) than the input had.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRESP(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let seed = data[0]
    let input = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    var limits = RESPDecoder.Limits()
    limits.maxBulkLength = 4096
    limits.maxArrayLength = 64
    limits.maxDepth = 6
    limits.maxLineLength = 256
    limits.maxReplyBytes = 8192

    let whole = decode([input], limits: limits)
    var chunks: [[UInt8]] = []
    var state = UInt32(seed) &* 2_654_435_761 | 1
    var start = 0
    while start < input.count {
        state = state &* 1_103_515_245 &+ 12_345
        let length = Int(state >> 16) % 9  // 0...8: empty chunks, and CR split from LF
        chunks.append(Array(input[start..<min(input.count, start + length)]))
        start += length
    }
    let split = decode(chunks, limits: limits)
    precondition(whole.values == split.values, "chunking changed the values")
    precondition(whole.failed == split.failed, "chunking changed the verdict")
    let held = whole.values.reduce(0) { $0 + stringBytes($1) }
    precondition(held <= input.count, "values hold more bytes than arrived")
    return 0
}

private func decode(_ chunks: [[UInt8]], limits: RESPDecoder.Limits) -> (values: [RESPValue], failed: Bool) {
    var decoder = RESPDecoder(limits: limits)
    var values: [RESPValue] = []
    for chunk in chunks {
        decoder.feed(chunk)
        do {
            while let value = try decoder.next() { values.append(value) }
        } catch {
            decoder.feed([43, 79, 75, 13, 10])  // "+OK\r\n"
            precondition((try? decoder.next()) == nil, "the decoder recovered after an error")
            return (values, true)
        }
    }
    return (values, false)
}

private func stringBytes(_ value: RESPValue) -> Int {
    switch value {
    // Invalid UTF-8 is repaired with U+FFFD, one scalar per bad byte at most.
    case .simpleString(let text), .error(let text): text.unicodeScalars.count
    case .integer, .bulkString(nil), .array(nil): 0
    case .bulkString(let bytes?): bytes.count
    case .array(let elements?): elements.reduce(0) { $0 + stringBytes($1) }
    }
}
