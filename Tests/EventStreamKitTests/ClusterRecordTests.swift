@testable import EventStreamKit
import Testing

@Suite("ClusterRecord")
struct ClusterRecordTests {
    @Test("every audience, name, data, retry and comment reads back as written", arguments: [
        ClusterRecord(audience: .everyone, name: nil, data: nil),
        ClusterRecord(audience: .only(["alice", "bob"]), name: "note", data: Array("a\nb".utf8), retry: .milliseconds(1500), comments: ["x", ""]),
        ClusterRecord(audience: .except(["é", ""]), name: "", data: []),
        ClusterRecord(audience: .channel("news"), name: "n", data: [0, 255, 13, 10]),
        ClusterRecord(audience: .everyChannel, name: nil, data: Array(repeating: 7, count: 70_000)),
    ])
    func roundTrip(record: ClusterRecord) throws {
        #expect(try ClusterRecord(bytes: record.bytes) == record)
    }

    @Test("recipients go through the source codec; sources it cannot decode are left out")
    func recipients() {
        let record = ClusterRecord(recipients: Recipients<Int>.only([3, 1]), name: nil, data: nil) { String($0) }
        #expect(record.audience == .only(["1", "3"]))
        let odd = ClusterRecord(audience: .only(["1", "x", "3"]), name: nil, data: nil)
        #expect(odd.recipients { Int($0) } == Recipients<Int>.only([1, 3]))
        #expect(ClusterRecord(audience: .except(["2"]), name: nil, data: nil).recipients { Int($0) } == Recipients<Int>.everyone(except: [2]))
    }

    @Test("every truncation, a wrong version, a lying count and trailing bytes are refused")
    func malformed() {
        let bytes = ClusterRecord(audience: .only(["alice"]), name: "n", data: [1, 2, 3], retry: .seconds(1), comments: ["c"]).bytes
        for length in 0..<bytes.count {
            #expect(throws: RedisError.self, "cut at \(length)") { try ClusterRecord(bytes: Array(bytes.prefix(length))) }
        }
        #expect(throws: RedisError.self) { try ClusterRecord(bytes: [3] + bytes.dropFirst()) }
        #expect(throws: RedisError.self) { try ClusterRecord(bytes: bytes + [0]) }
        // An audience of 4 billion sources in 20 bytes.
        #expect(throws: RedisError.self) { try ClusterRecord(bytes: [1, 1, 0xFF, 0xFF, 0xFF, 0xFF] + Array(repeating: 0, count: 14)) }
    }
}

@Suite("ClusterRecord kinds")
struct ClusterRecordKindTests {
    @Test("a close record reads back as written, and is version 2; an event is still version 1")
    func closeRoundTrip() throws {
        let close = ClusterRecord(kind: .close, audience: .only(["alice"]), name: nil, data: nil)
        #expect(close.bytes.prefix(2) == [2, 1])
        #expect(try ClusterRecord(bytes: close.bytes) == close)
        let event = ClusterRecord(audience: .everyone, name: "n", data: [1])
        #expect(event.bytes.first == 1)
        #expect(try ClusterRecord(bytes: event.bytes).kind == .event)
    }

    @Test("a version-1 record written before kinds existed still decodes, as an event")
    func oldRecordDecodes() throws {
        // Version 1, everyone, no name, data "hi", no retry, no comments: the old layout.
        let old: [UInt8] = [1, 0, 0, 1, 0, 0, 0, 2, 104, 105, 0, 0, 0, 0, 0]
        let record = try ClusterRecord(bytes: old)
        #expect(record == ClusterRecord(audience: .everyone, name: nil, data: Array("hi".utf8)))
    }

    @Test("every truncation of a version-2 record, an unknown kind and trailing bytes are refused")
    func malformedKind() {
        let bytes = ClusterRecord(kind: .close, audience: .only(["alice", "bob"]), name: nil, data: nil).bytes
        for length in 0..<bytes.count {
            #expect(throws: RedisError.self, "cut at \(length)") { try ClusterRecord(bytes: Array(bytes.prefix(length))) }
        }
        #expect(throws: RedisError.self) { try ClusterRecord(bytes: [2, 9] + bytes.dropFirst(2)) }
        #expect(throws: RedisError.self) { try ClusterRecord(bytes: bytes + [0]) }
        #expect(throws: RedisError.self) { try ClusterRecord(bytes: [3] + bytes.dropFirst()) }
    }
}
