@testable import EventStreamKit
import Testing

private typealias Log = Backlog<String>

/// An entry for everyone with a frame of exactly `size` bytes; its ID is "e\(sequence)".
private func entry(_ sequence: UInt64, size: Int) -> Log.Entry {
    Log.Entry(
        sequence: sequence, id: "e\(sequence)", name: nil, recipients: .everyone,
        frame: EventFrame(encodedBytes: Array(repeating: UInt8(ascii: "x"), count: size)), frames: [:]
    )
}

private func sequences(_ backlog: Log) -> [UInt64] {
    backlog.entries(after: 0).map(\.sequence)
}

@Suite("Backlog")
struct BacklogTests {
    @Test func theOldestGoFirstWhenTheCapacityIsReached() {
        var backlog = Log(capacity: 3, byteLimit: .max)
        for sequence in 1...5 { backlog.append(entry(UInt64(sequence), size: 10)) }
        #expect(sequences(backlog) == [3, 4, 5])
        #expect(backlog.byteCount == 30)
        #expect(backlog.position(of: "e2") == .gap)
        #expect(backlog.position(of: "e3") == .after(3))
    }

    @Test func theOldestGoFirstUntilTheBytesFit() {
        var backlog = Log(capacity: 100, byteLimit: 100)
        for sequence in 1...4 { backlog.append(entry(UInt64(sequence), size: 30)) }
        #expect(sequences(backlog) == [2, 3, 4])
        #expect(backlog.byteCount == 90)
        // One large event evicts several small ones.
        backlog.append(entry(5, size: 70))
        #expect(sequences(backlog) == [4, 5])
        #expect(backlog.byteCount == 100)
        #expect(backlog.position(of: "e3") == .gap)
        #expect(backlog.entries(after: 4).map(\.sequence) == [5])
    }

    @Test func theNewestEntryIsKeptEvenIfItAloneIsOverTheLimit() {
        var backlog = Log(capacity: 10, byteLimit: 100)
        backlog.append(entry(1, size: 50))
        backlog.append(entry(2, size: 500))
        #expect(sequences(backlog) == [2])
        #expect(backlog.byteCount == 500)
        backlog.append(entry(3, size: 1))
        #expect(sequences(backlog) == [3])
        #expect(backlog.byteCount == 1)
    }

    @Test func perRecipientPayloadsCountEveryFrame() {
        var backlog = Log(capacity: 10, byteLimit: 100)
        let frames = ["a": EventFrame(encodedBytes: Array(repeating: 1, count: 40)), "b": EventFrame(encodedBytes: Array(repeating: 2, count: 40))]
        backlog.append(Log.Entry(sequence: 1, id: "e1", name: nil, recipients: .only(["a", "b"]), frame: nil, frames: frames))
        #expect(backlog.byteCount == 80)
        backlog.append(entry(2, size: 30))
        #expect(sequences(backlog) == [2])
    }

    @Test func resizingKeepsTheNewestAndTheByteLimit() {
        var backlog = Log(capacity: 4, byteLimit: 50)
        for sequence in 1...4 { backlog.append(entry(UInt64(sequence), size: 10)) }
        backlog.resize(to: 2)
        #expect(sequences(backlog) == [3, 4])
        #expect(backlog.byteCount == 20)
        backlog.resize(to: 10)
        for sequence in 5...8 { backlog.append(entry(UInt64(sequence), size: 10)) }
        #expect(sequences(backlog) == [4, 5, 6, 7, 8])
        #expect(backlog.byteCount == 50)
    }

    @Test func aRepeatedIDPointsAtItsNewestEntryAfterTheOldOneIsEvicted() {
        var backlog = Log(capacity: 2, byteLimit: .max)
        let frame = EventFrame(encodedBytes: Array("data: x\n\n".utf8))
        for sequence: UInt64 in 1...2 {
            backlog.append(Log.Entry(sequence: sequence, id: "same", name: nil, recipients: .everyone, frame: frame, frames: [:]))
        }
        backlog.append(entry(3, size: 1))  // evicts sequence 1, whose ID now belongs to 2
        #expect(backlog.position(of: "same") == .after(2))
    }
}
