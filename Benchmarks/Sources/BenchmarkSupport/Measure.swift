/// A tiny benchmark harness: run a body several times, keep the median.
///
/// Figures are only ever compared as ratios against a baseline measured in the same
/// process, so machine noise mostly cancels out.
public struct Measurement: Sendable {
    public let name: String
    public let median: Duration
    public let runs: [Duration]
    public let bytes: Int
    public let events: Int

    public var seconds: Double {
        let (s, atto) = median.components
        return Double(s) + Double(atto) / 1e18
    }

    public var megabytesPerSecond: Double { Double(bytes) / seconds / 1_000_000 }
    public var eventsPerSecond: Double { Double(events) / seconds }
}

/// Keeps a value alive so the optimiser cannot drop the work that made it.
@inline(never)
public func blackHole<T>(_ value: T) {
    withExtendedLifetime(value) {}
}

/// Runs `body` once to warm up, then `repetitions` times, and returns the median.
///
/// - Parameters:
///   - bytes: Bytes processed by one run of `body`.
///   - events: Events processed by one run of `body`.
public func measure(_ name: String, repetitions: Int = 15, bytes: Int, events: Int, _ body: () throws -> Void) rethrows -> Measurement {
    try body()
    let clock = ContinuousClock()
    var runs: [Duration] = []
    for _ in 0..<repetitions {
        let start = clock.now
        try body()
        runs.append(clock.now - start)
    }
    runs.sort()
    return Measurement(name: name, median: runs[runs.count / 2], runs: runs, bytes: bytes, events: events)
}

/// Prints a table row.
public func report(_ m: Measurement, baseline: Measurement? = nil) {
    func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
    var line = pad(m.name, 48)
    line += pad(String(format1(m.megabytesPerSecond)) + " MB/s", 16)
    if m.events > 0 { line += pad(format1(m.eventsPerSecond / 1e6) + " M events/s", 20) }
    if let baseline { line += "time ratio to baseline: " + format2(m.seconds / baseline.seconds) + "x" }
    print(line)
}

public func format1(_ x: Double) -> String { String(Double(Int((x * 10).rounded())) / 10) }
public func format2(_ x: Double) -> String { String(Double(Int((x * 100).rounded())) / 100) }
