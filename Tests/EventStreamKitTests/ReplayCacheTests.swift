@testable import EventStreamKit
import Testing

@Suite("ReplayCache: frames read back from the log, shared and bounded")
struct ReplayCacheTests {
    private func entry(_ size: Int) -> ReplayCache<String>.Entry {
        let frame = EventFrame(encodedBytes: Array(repeating: 65, count: size))
        return .init(event: (Delivery(frame: frame, name: nil, id: nil), .everyone))
    }

    @Test("holds at most its byte limit, forgetting the oldest first; a new epoch empties it")
    func boundedAndPerEpoch() {
        var cache = ReplayCache<String>(byteLimit: 1_000)
        for sequence in 1...30 as ClosedRange<UInt64> { cache.insert(entry(100), sequence: sequence, epoch: "a") }
        #expect(cache.bytes <= 1_000)
        #expect(cache.count == 10)
        #expect(cache.entry(30, epoch: "a") != nil)
        #expect(cache.entry(20, epoch: "a") == nil, "the oldest went first")
        #expect(cache.entry(30, epoch: "b") == nil, "another epoch's record 30 is another record")
        cache.insert(.init(event: nil), sequence: 31, epoch: "a")
        #expect(cache.entry(31, epoch: "a")?.event == nil, "a record that is not replayed is remembered as such")
        cache.insert(entry(100), sequence: 1, epoch: "b")
        #expect(cache.count == 1)
        #expect(cache.entry(30, epoch: "a") == nil)
    }

    @Test("two clients replaying the same record share one frame")
    func sharedFrames() {
        var cache = ReplayCache<String>(byteLimit: 1 << 20)
        cache.insert(entry(10), sequence: 7, epoch: "a")
        let first = cache.entry(7, epoch: "a")?.event?.delivery.frame
        let second = cache.entry(7, epoch: "a")?.event?.delivery.frame
        #expect(first?.bytes.withUnsafeBufferPointer { $0.baseAddress } == second?.bytes.withUnsafeBufferPointer { $0.baseAddress })
    }
}
