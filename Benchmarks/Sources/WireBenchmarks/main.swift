import BenchmarkSupport
import EventStreamKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A stream of `count` events, each `id` + `event` + one `data` line of `dataSize` bytes.
func makeStream(count: Int, dataSize: Int) -> (bytes: [UInt8], events: [ServerSentEvent]) {
    let payload = String(repeating: "x", count: dataSize)
    var bytes: [UInt8] = []
    var events: [ServerSentEvent] = []
    for i in 0..<count {
        let event = try! ServerSentEvent(id: String(i), event: "tick", data: payload)
        event.encode(into: &bytes)
        events.append(event)
    }
    return (bytes, events)
}

/// The baseline: find every LF with memchr, and nothing else.
func memchrNewlines(_ bytes: [UInt8]) -> Int {
    bytes.withUnsafeBufferPointer { buffer in
        var count = 0
        var p = buffer.baseAddress!
        var remaining = buffer.count
        while remaining > 0, let hit = memchr(p, 10, remaining) {
            let next = UnsafePointer(hit.assumingMemoryBound(to: UInt8.self)) + 1
            remaining -= p.distance(to: next)
            p = next
            count += 1
        }
        return count
    }
}

func parse(_ bytes: [UInt8], chunkSize: Int) -> Int {
    var parser = EventStreamParser()
    var elements: [EventStreamParser.Element] = []
    elements.reserveCapacity(1024)
    var dispatched = 0
    bytes.withUnsafeBytes { raw in
        var start = 0
        while start < raw.count {
            let end = min(raw.count, start + chunkSize)
            try! parser.parse(UnsafeRawBufferPointer(rebasing: raw[start..<end]), into: &elements)
            dispatched += elements.count
            elements.removeAll(keepingCapacity: true)
            start = end
        }
    }
    return dispatched
}

func encode(_ events: [ServerSentEvent], into buffer: inout [UInt8]) {
    buffer.removeAll(keepingCapacity: true)
    for event in events { event.encode(into: &buffer) }
}

print("EventStreamKit wire benchmarks (release build; medians of 15 runs)")
print()

for (label, count, dataSize) in [("small (100 B data)", 200_000, 100), ("large (64 KiB data)", 256, 65_536)] {
    let (stream, events) = makeStream(count: count, dataSize: dataSize)
    print("\(label): \(count) events, \(stream.count) bytes")
    let baseline = measure("  baseline: memchr scan for LF", bytes: stream.count, events: count) {
        blackHole(memchrNewlines(stream))
    }
    report(baseline)
    for chunk in [stream.count, 65_536, 4_096] {
        let name = chunk == stream.count ? "  parse, whole buffer in one chunk" : "  parse, \(chunk)-byte chunks"
        let m = measure(name, bytes: stream.count, events: count) {
            let n = parse(stream, chunkSize: chunk)
            precondition(n == count, "parsed \(n) of \(count) events")
        }
        report(m, baseline: baseline)
    }
    var buffer: [UInt8] = []
    buffer.reserveCapacity(stream.count)
    let encoded = measure("  encode into a reused buffer", bytes: stream.count, events: count) {
        encode(events, into: &buffer)
        blackHole(buffer.count)
    }
    report(encoded, baseline: baseline)
    let frames = measure("  encode each as its own EventFrame", bytes: stream.count, events: count) {
        var total = 0
        for event in events { total += EventFrame(event).count }
        precondition(total == stream.count)
    }
    report(frames, baseline: baseline)
    print()
}
