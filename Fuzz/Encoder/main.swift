// libFuzzer entry point for the encoder. Compiled with the wire layer's source files by
// Fuzz/run.sh; see Fuzz/README.md.
//
// The input is split at its first two 0xFF bytes into an ID, an event name and data.
// Properties: the initializer throws exactly for the names and IDs the spec cannot carry;
// anything it accepts encodes to exactly one event, which parses back to itself (data with
// its line breaks normalised to LF): no payload, name or ID can inject a field or an event.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEncoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let parts = bytes.split(separator: 0xFF, maxSplits: 2, omittingEmptySubsequences: false)
    let id = parts.count > 1 ? String(decoding: parts[0], as: UTF8.self) : nil
    let name = parts.count > 2 ? String(decoding: parts[1], as: UTF8.self) : nil
    let payload = String(decoding: parts.last ?? [], as: UTF8.self)

    let idIsValid = id.map { !$0.unicodeScalars.contains { $0 == "\r" || $0 == "\n" || $0 == "\0" } } ?? true
    let nameIsValid = name.map { !$0.unicodeScalars.contains { $0 == "\r" || $0 == "\n" } } ?? true
    let event: ServerSentEvent
    do {
        event = try ServerSentEvent(id: id, event: name, data: payload)
    } catch {
        precondition(!(idIsValid && nameIsValid), "a valid event was refused: \(error)")
        return 0
    }
    precondition(idIsValid && nameIsValid, "an event with a line break in its name or ID was accepted")

    // Limits high enough never to apply: this checks the encoding, not the client's bounds
    // (the 4 KiB ID limit refused an ID of 1,400 invalid bytes, 4.2 KB once repaired).
    var parser = EventStreamParser(limits: .init(maxLineLength: 1 << 20, maxEventSize: 1 << 22, maxEventIDLength: 1 << 20))
    let elements = try! parser.parse(event.encoded)
    let events = elements.compactMap { element -> MessageEvent? in
        if case .event(let message) = element { return message }
        return nil
    }
    precondition(events.count == 1, "one event encoded to \(events.count) events")
    precondition(elements.allSatisfy { if case .event = $0 { true } else { false } }, "the encoding carried extra fields")
    let parsed = events[0]
    let expectedType = (name?.isEmpty ?? true) ? "message" : name!
    precondition(parsed.type == expectedType, "type \(parsed.type.debugDescription) came back for \(expectedType.debugDescription)")
    precondition(parsed.lastEventID == (id ?? ""), "ID \(parsed.lastEventID.debugDescription) came back for \(String(describing: id))")
    let normalised = payload.replacingLineBreaks()
    precondition(parsed.data == normalised, "data did not round-trip")
    return 0
}

private extension String {
    /// CRLF, CR and LF all become LF, as the parser reads them.
    func replacingLineBreaks() -> String {
        var result = String.UnicodeScalarView()
        var previousWasCR = false
        for scalar in unicodeScalars {
            if scalar == "\n" && previousWasCR { previousWasCR = false; continue }
            previousWasCR = scalar == "\r"
            result.append(scalar == "\r" ? "\n" : scalar)
        }
        return String(result)
    }
}
