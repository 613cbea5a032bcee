import Foundation
import Synchronization

/// Waits for sockets to become readable or writable, for many tasks at once, on one OS
/// thread blocked in `epoll_wait` (Linux) or `kevent` (Darwin).
///
/// Only accepts, reads and "wait until writable" go through here; writes go straight from
/// the writing task to the socket. Each wait arms the descriptor one-shot for what is
/// awaited, so an idle stream costs nothing until its client speaks or leaves.
///
/// Arming happens under the lock, with flags computed from everything that waits on the
/// descriptor: two tasks arming at once (a stream's writer and its hang-up watch) cannot
/// overwrite each other's interest.
package final class Poller: Sendable {
    private struct Waiters {
        package var read: UnsafeContinuation<Void, any Error>?
        package var write: UnsafeContinuation<Void, any Error>?
        /// A watch installed by ``watchReadable(_:handler:)``.
        package var readHandler: (@Sendable () -> Bool)?
        package var isRegistered = false

        package var wantsRead: Bool { read != nil || readHandler != nil }
    }

    private let backend: PollerBackend
    private let waiters = Mutex<[Int32: Waiters]>([:])
    private let stopped = Atomic<Bool>(false)
    private let finished = Mutex<CheckedContinuation<Void, Never>?>(nil)
    private let isFinished = Atomic<Bool>(false)

    package init() throws(SocketError) {
        backend = try PollerBackend()
        let thread = Thread { [self] in self.loop() }
        thread.name = "EventStreamKit.Poller"
        thread.start()
    }

    /// Waits until `fd` is readable, or its peer hung up.
    ///
    /// - Throws: `CancellationError` if the task is cancelled, or ``SocketError`` if the
    ///   descriptor was forgotten meanwhile.
    package func waitReadable(_ fd: Int32) async throws {
        try await wait(fd, forWriting: false)
    }

    /// Waits until `fd` is writable.
    package func waitWritable(_ fd: Int32) async throws {
        try await wait(fd, forWriting: true)
    }

    /// Calls `handler` on the poller's thread each time `fd` is readable (data, end of file
    /// or an error), until it returns `false` or `fd` is forgotten. No task waits meanwhile:
    /// an idle event stream's watch for its client leaving costs a table entry.
    ///
    /// The handler runs under the poller's lock, so it runs before ``forget(_:)`` returns or
    /// not at all, never on a descriptor number that was closed and reused. It must be quick
    /// (a non-blocking read) and must not call the poller.
    ///
    /// - Returns: `false` if the descriptor could not be watched.
    package func watchReadable(_ fd: Int32, handler: @escaping @Sendable () -> Bool) -> Bool {
        waiters.withLock { table in
            var entry = table[fd] ?? Waiters()
            entry.readHandler = handler
            let add = !entry.isRegistered
            entry.isRegistered = true
            table[fd] = entry
            guard backend.arm(fd, read: true, write: entry.write != nil, add: add) else {
                table[fd]?.readHandler = nil
                return false
            }
            return true
        }
    }

    /// Forgets `fd` before it is closed: pending waits fail, a watch ends.
    package func forget(_ fd: Int32) {
        let removed = waiters.withLock { table in
            let removed = table.removeValue(forKey: fd)
            if removed?.isRegistered == true { backend.remove(fd) }
            return removed
        }
        removed?.read?.resume(throwing: SocketError("poll", code: EBADF))
        removed?.write?.resume(throwing: SocketError("poll", code: EBADF))
    }

    /// Stops the thread; returns once it has ended.
    package func shutdown() async {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        backend.wake()
        await withCheckedContinuation { continuation in
            let done = finished.withLock { state -> Bool in
                if isFinished.load(ordering: .acquiring) { return true }
                state = continuation
                return false
            }
            if done { continuation.resume() }
        }
    }

    private func wait(_ fd: Int32, forWriting: Bool) async throws {
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                let failure = waiters.withLock { table -> (any Error)? in
                    // A task cancelled before it got here already ran its cancellation handler,
                    // which found no continuation: registering one now would wait forever.
                    // Checked under the lock the handler takes, so no cancellation slips between.
                    if Task.isCancelled { return CancellationError() }
                    var entry = table[fd] ?? Waiters()
                    if forWriting { entry.write = continuation } else { entry.read = continuation }
                    let add = !entry.isRegistered
                    entry.isRegistered = true
                    guard backend.arm(fd, read: entry.wantsRead, write: entry.write != nil, add: add) else {
                        if forWriting { entry.write = nil } else { entry.read = nil }
                        table[fd] = entry
                        return SocketError("epoll_ctl")
                    }
                    table[fd] = entry
                    return nil
                }
                if let failure { continuation.resume(throwing: failure) }
            }
        } onCancel: {
            let cancelled = waiters.withLock { table -> UnsafeContinuation<Void, any Error>? in
                defer { if forWriting { table[fd]?.write = nil } else { table[fd]?.read = nil } }
                return forWriting ? table[fd]?.write : table[fd]?.read
            }
            cancelled?.resume(throwing: CancellationError())
        }
    }

    private func loop() {
        var events = PollerBackend.Events()
        while !stopped.load(ordering: .acquiring) {
            backend.wait(into: &events)
            for event in events.ready {
                let (resumeRead, resumeWrite) = waiters.withLock { table -> (UnsafeContinuation<Void, any Error>?, UnsafeContinuation<Void, any Error>?) in
                    guard var entry = table[event.fd] else { return (nil, nil) }
                    var read: UnsafeContinuation<Void, any Error>?
                    var write: UnsafeContinuation<Void, any Error>?
                    if event.readable {
                        if let waiting = entry.read {
                            read = waiting
                            entry.read = nil
                        } else if let handler = entry.readHandler, !handler() {
                            entry.readHandler = nil
                        }
                    }
                    if event.writable, let waiting = entry.write {
                        write = waiting
                        entry.write = nil
                    }
                    table[event.fd] = entry
                    // One-shot: the descriptor is disarmed; re-arm for whoever still waits.
                    if entry.wantsRead || entry.write != nil {
                        _ = backend.arm(event.fd, read: entry.wantsRead, write: entry.write != nil, add: false)
                    }
                    return (read, write)
                }
                resumeRead?.resume()
                resumeWrite?.resume()
            }
        }
        backend.close()
        let waiting = finished.withLock { state -> CheckedContinuation<Void, Never>? in
            isFinished.store(true, ordering: .releasing)
            defer { state = nil }
            return state
        }
        waiting?.resume()
    }
}

/// What the backend saw for one descriptor. A hang-up or error counts as both readable and
/// writable, so that whoever waits wakes and meets the error.
package struct PollerReadiness {
    package let fd: Int32
    package let readable: Bool
    package let writable: Bool
}
