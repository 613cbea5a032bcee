import EventStreamKit
#if canImport(Glibc)
import Glibc
#endif

/// Bench mode, for `../shared/bench` (`Benchmarks/run-all.sh` and `Benchmarks/compare.sh` add
/// this app as the peer `eventstreamkit-vapor`): `--bench-rate R --bench-size S` broadcasts an
/// event named `tick` R times a second through the hub, data `<unix time in ns> <sequence>
/// <padding to S bytes>`, and `/events` opens without a token. The same ticker as the demo's
/// and the Hummingbird example's, so the three are compared like for like.
struct BenchOptions: Sendable {
    var rate: Double
    var size: Int

    init?(_ arguments: [String]) {
        guard let index = arguments.firstIndex(of: "--bench-rate"), index + 1 < arguments.count,
              let rate = Double(arguments[index + 1]), rate >= 0 else { return nil }
        self.rate = rate
        let sizeIndex = arguments.firstIndex(of: "--bench-size")
        size = sizeIndex.flatMap { $0 + 1 < arguments.count ? Int(arguments[$0 + 1]) : nil } ?? 100
    }
}

/// Publishes every tick due at each wake-up (every max(1/rate, 1 ms)) as one burst, until the
/// calling task is cancelled. Rate > 0.
struct BenchTicker: Sendable {
    let hub: EventServer<String>
    let options: BenchOptions

    func run() async {
        let tick = try! EventType<String>("tick", marshal: .text)
        let start = ContinuousClock.now
        var published = 0
        while !Task.isCancelled {
            let (seconds, attoseconds) = (ContinuousClock.now - start).components
            let due = Int(options.rate * (Double(seconds) + Double(attoseconds) / 1e18)) - published
            if due > 0 {
                let payloads = (0..<due).map { offset in payload(sequence: published + offset + 1) }
                published += due
                _ = try? await hub.send(contentsOf: payloads, as: tick)
            }
            try? await Task.sleep(for: .seconds(max(1 / options.rate, 0.001)))
        }
    }

    private func payload(sequence: Int) -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let prefix = "\(Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)) \(sequence) "
        return prefix.utf8.count >= options.size ? prefix : prefix + String(repeating: "x", count: options.size - prefix.utf8.count)
    }
}
