/// A deterministic random number generator (SplitMix64), so that a failing property
/// test names a seed that reproduces it.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476C_E5E4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Array where Element == UInt8 {
    /// Splits these bytes into chunks of random lengths (from 0 up to `maxChunk`).
    func randomChunks(maxChunk: Int, using generator: inout SeededGenerator) -> [[UInt8]] {
        var chunks: [[UInt8]] = []
        var start = 0
        while start < count {
            let length = Int.random(in: 0...maxChunk, using: &generator)
            let end = Swift.min(count, start + length)
            chunks.append(Array(self[start..<end]))
            start = end
        }
        return chunks
    }
}

extension String {
    var bytes: [UInt8] { Array(utf8) }
}
