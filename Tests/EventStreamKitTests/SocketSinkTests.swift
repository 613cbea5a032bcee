@testable import EventStreamKit
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A connected pair of Unix stream sockets: the writer non-blocking with a small send
/// buffer, so that large writes go partial and must wait; the reader blocking.
private func makeSocketPair() throws -> (writer: Socket, reader: Socket) {
    var fds: [Int32] = [-1, -1]
    #if canImport(Glibc)
    let made = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds)
    #else
    let made = socketpair(AF_UNIX, SOCK_STREAM, 0, &fds)
    #endif
    guard made == 0 else { throw SocketError("socketpair") }
    let writer = Socket(fd: fds[0]), reader = Socket(fd: fds[1])
    try writer.setNonBlocking()
    var size: Int32 = 4096
    _ = setsockopt(writer.fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    _ = setsockopt(reader.fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    #if canImport(Darwin)
    var one: Int32 = 1
    _ = setsockopt(writer.fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
    #endif
    return (writer, reader)
}

/// Reads `fd` until end of file on a thread of its own, a few hundred bytes per call, so the
/// writer keeps finding the buffer full.
private func readToEnd(_ fd: Int32) async -> [UInt8] {
    await withCheckedContinuation { continuation in
        let thread = Thread {
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 700)
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n > 0 {
                    received.append(contentsOf: buffer[..<n])
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            continuation.resume(returning: received)
        }
        thread.start()
    }
}

/// `count` frames of 0 to 20,000 bytes (a few empty, a few at the maximum), each byte
/// telling its frame and position apart from its neighbours'.
private func variedFrames(_ count: Int, seed: UInt64) -> [EventFrame] {
    var generator = SeededGenerator(seed: seed)
    return (0..<count).map { index in
        let size = switch index % 10 {
        case 0: 0
        case 1: 20_000
        default: Int.random(in: 1...20_000, using: &generator)
        }
        return EventFrame(encodedBytes: (0..<size).map { UInt8(truncatingIfNeeded: index &* 131 &+ $0 &* 7) })
    }
}

@Suite("SocketSink")
struct SocketSinkTests {
    @Test("vectored writes deliver the head and every frame, in order, through partial writes", arguments: [1, 2] as [UInt64])
    func vectoredWritesArriveWhole(seed: UInt64) async throws {
        let (writer, reader) = try makeSocketPair()
        let poller = try Poller()
        let head = Array("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n".utf8)
        let sink = SocketSink(socket: writer, poller: poller, head: head)
        let frames = variedFrames(300, seed: seed)

        async let received = readToEnd(reader.fd)
        do {
            // Several writes, as several wake-ups would make: the head goes only with the first.
            try await withDeadline(.seconds(60), "the vectored writes") {
                for start in stride(from: 0, to: frames.count, by: 100) {
                    try await sink.write(contentsOf: Array(frames[start..<start + 100]))
                }
            }
        } catch {
            writer.shutdown()  // unblocks the reader
            _ = await received
            throw error
        }
        writer.shutdownWrite()
        let bytes = await received
        #expect(bytes.count == head.count + frames.reduce(0) { $0 + $1.count })
        #expect(bytes == head + frames.flatMap(\.bytes))
        poller.forget(writer.fd)
        await poller.shutdown()
        writer.close()
        reader.close()
    }

    @Test func aFullBufferMakesAVectoredWritePartialAndTheCursorResumesExactly() throws {
        let (writer, reader) = try makeSocketPair()
        defer {
            writer.close()
            reader.close()
        }
        let frames = variedFrames(40, seed: 3)
        let total = frames.reduce(0) { $0 + $1.count }
        var cursor = Socket.VectoredCursor()
        let first = try writer.write(vectored: frames, head: [], from: &cursor)
        #expect(first > 0 && first < total)
        #expect(try writer.write(vectored: frames, head: [], from: &cursor) == 0)  // would block

        // Drain by hand and keep writing until everything is through.
        var received: [UInt8] = []
        var written = first
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while received.count < total {
            let n = buffer.withUnsafeMutableBytes { recv(reader.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 { received.append(contentsOf: buffer[..<n]) }
            if written < total { written += try writer.write(vectored: frames, head: [], from: &cursor) }
        }
        #expect(written == total)
        #expect(received == frames.flatMap(\.bytes))
        #expect(try writer.write(vectored: frames, head: [], from: &cursor) == 0)  // nothing left
    }

    /// A sender's write for an idle stream (writeNow) that the socket takes in part hands the
    /// rest back as the shared frame and an offset, not a copy: a client that stops reading
    /// must not pin a private copy of nearly a whole frame per stream. The reader then writes
    /// from that offset, and the peer gets the frame exactly once.
    @Test func theRestOfAFrameCutPartWayIsTheSharedFrameAndAnOffset() async throws {
        let (writer, reader) = try makeSocketPair()
        let poller = try Poller()
        let sink = SocketSink(socket: writer, poller: poller, head: [])
        let frame = EventFrame(encodedBytes: (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 13) })
        let delivery = Delivery(frame: frame, name: nil, id: nil)
        guard case .partial(let framesWritten, let rest) = sink.writeNow([delivery]) else {
            Issue.record("a 200 KB frame fit a 4 KiB buffer")
            return
        }
        #expect(framesWritten == 0)
        #expect(rest.skip > 0 && rest.skip < frame.count)
        #expect(rest.unwrittenCount == frame.count - rest.skip)
        let sameStorage = frame.bytes.withUnsafeBufferPointer { original in
            rest.frame.bytes.withUnsafeBufferPointer { $0.baseAddress == original.baseAddress }
        }
        #expect(sameStorage, "the rest is a copy")

        async let received = readToEnd(reader.fd)
        try await sink.write(contentsOf: [rest.frame], skippingFirst: rest.skip)
        writer.close()
        #expect(await received == frame.bytes)
        reader.close()
        await poller.shutdown()
    }

    @Test func aWriteToAClosedPeerThrows() async throws {
        let (writer, reader) = try makeSocketPair()
        reader.close()
        let poller = try Poller()
        let sink = SocketSink(socket: writer, poller: poller, head: [])
        let error = await #expect(throws: UnfinishedWrite.self) {
            try await sink.write(contentsOf: [EventFrame(encodedBytes: Array("data: x\n\n".utf8))])
        }
        #expect(error?.framesWritten == 0)
        #expect(error?.underlying is SocketError)
        // What a client prints (`listen`'s "attempt 1 failed: ..."): the cause, not a dump.
        let said = String(describing: try #require(error))
        #expect(said == String(describing: try #require(error?.underlying)) && said.hasPrefix("sendmsg failed: "), "\(said)")
        poller.forget(writer.fd)
        await poller.shutdown()
        writer.close()
    }

    @Test("a peer that leaves part-way: the write says how many frames went out whole, at least every frame the peer read")
    func aPeerLeavingPartWayGetsTheWrittenFramesCounted() async throws {
        let (writer, reader) = try makeSocketPair()
        let poller = try Poller()
        let sink = SocketSink(socket: writer, poller: poller, head: [])
        let frames = (0..<40).map { EventFrame(encodedBytes: Array(repeating: UInt8(ascii: "a") + UInt8($0 % 26), count: 1_000)) }
        // The peer reads 10,500 bytes (ten frames and a half), then closes.
        let reading = Task.detached { () -> Int in
            var received = 0
            var buffer = [UInt8](repeating: 0, count: 500)
            while received < 10_500 {
                let n = buffer.withUnsafeMutableBytes { recv(reader.fd, $0.baseAddress, min($0.count, 10_500 - received), 0) }
                if n > 0 { received += n } else if n < 0 && errno == EINTR { continue } else { break }
            }
            reader.close()
            return received
        }
        let error = await #expect(throws: UnfinishedWrite.self) {
            try await withDeadline(.seconds(20), "the write to fail") { try await sink.write(contentsOf: frames) }
        }
        #expect(await reading.value == 10_500)
        let written = try #require(error).framesWritten
        #expect(written >= 10, "the peer read ten whole frames")
        #expect(written < frames.count, "the peer left before most frames could be written")
        poller.forget(writer.fd)
        await poller.shutdown()
        writer.close()
    }

    @Test func theDefaultJoinsFramesIntoOneWrite() async throws {
        let sink = RecordingSink()
        let frames = ["data: a\n\n", "", "data: b\n\n", "data: c\n\n"].map { EventFrame(encodedBytes: Array($0.utf8)) }
        try await sink.write(contentsOf: frames)
        #expect(sink.chunks == [Array("data: a\n\ndata: b\n\ndata: c\n\n".utf8)])

        try await sink.write(contentsOf: [frames[0]])
        try await sink.write(contentsOf: [frames[1]])  // an empty frame writes nothing
        try await sink.write(contentsOf: [frames[1], frames[1]])
        #expect(sink.chunks.count == 2)
        #expect(sink.chunks.last == frames[0].bytes)
    }
}
