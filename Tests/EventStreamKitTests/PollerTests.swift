@testable import EventStreamKit
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("Poller")
struct PollerTests {
    @Test("a task cancelled before it waits is not parked forever: the wait throws CancellationError at once", arguments: [false, true])
    func cancelledBeforeWaiting(forWriting: Bool) async throws {
        var fds: [Int32] = [-1, -1]
        #if canImport(Glibc)
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        #else
        #expect(socketpair(AF_UNIX, SOCK_STREAM, 0, &fds) == 0)
        #endif
        let socket = Socket(fd: fds[0]), peer = Socket(fd: fds[1])
        try socket.setNonBlocking()
        // Fill the buffer, so that "writable" is not true at once either.
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while (try? chunk.withUnsafeMutableBytes { try socket.write(UnsafeRawBufferPointer($0)) }) ?? 0 > 0 {}
        let poller = try Poller()
        let waiting = Task {
            withUnsafeCurrentTask { $0?.cancel() }  // cancelled before the wait starts
            if forWriting { try await poller.waitWritable(socket.fd) } else { try await poller.waitReadable(socket.fd) }
        }
        await #expect(throws: CancellationError.self) {
            try await withDeadline(.seconds(5), "the cancelled wait to end") { try await waiting.value }
        }
        poller.forget(socket.fd)
        await poller.shutdown()
        socket.close()
        peer.close()
    }
}
