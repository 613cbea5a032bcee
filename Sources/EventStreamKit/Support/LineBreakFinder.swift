#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Finds CR and LF bytes in one contiguous buffer, each kind with `memchr`.
///
/// The position of the next CR and the next LF are cached separately, so that a
/// buffer is scanned at most once for each byte value however its lines end (LF,
/// CRLF or lone CR): a stream of LF-only lines costs one `memchr` over the whole
/// buffer for CR, not one per line.
struct LineBreakFinder {
    private let base: UnsafePointer<UInt8>
    private let count: Int
    private var nextCR = -1
    private var nextLF = -1

    init(_ base: UnsafePointer<UInt8>, count: Int) {
        self.base = base
        self.count = count
    }

    /// The index of the first CR or LF at or after `start`, or `count` if there is none.
    mutating func next(from start: Int) -> Int {
        if nextLF < start { nextLF = Self.find(10, in: base, from: start, count: count) }
        if nextCR < start { nextCR = Self.find(13, in: base, from: start, count: count) }
        return min(nextLF, nextCR)
    }

    /// The index of the first `byte` at or after `start`, or `count` if there is none.
    static func find(_ byte: UInt8, in base: UnsafePointer<UInt8>, from start: Int, count: Int) -> Int {
        guard start < count, let hit = memchr(base + start, Int32(byte), count - start) else { return count }
        return base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
    }
}
