#if canImport(Darwin)
import Darwin

/// kqueue, with one-shot filters per wait and an EVFILT_USER event to wake the thread.
///
/// - Note: Written for Darwin and not yet run there: this project's machines are Linux.
package struct PollerBackend: Sendable {
    package struct Events {
        fileprivate var buffer = [kevent](repeating: kevent(), count: 256)
        package var ready: [PollerReadiness] = []
    }

    private let queue: Int32
    private static let wakeIdent: UInt = 0xE5C

    package init() throws(SocketError) {
        queue = kqueue()
        guard queue >= 0 else { throw SocketError("kqueue") }
        var wake = kevent(ident: Self.wakeIdent, filter: Int16(EVFILT_USER), flags: UInt16(EV_ADD | EV_CLEAR), fflags: 0, data: 0, udata: nil)
        guard kevent(queue, &wake, 1, nil, 0, nil) == 0 else { throw SocketError("kevent(EVFILT_USER)") }
    }

    package func arm(_ fd: Int32, read: Bool, write: Bool, add: Bool) -> Bool {
        var changes: [kevent] = []
        let flags = UInt16(EV_ADD | EV_ONESHOT)
        if read { changes.append(kevent(ident: UInt(fd), filter: Int16(EVFILT_READ), flags: flags, fflags: 0, data: 0, udata: nil)) }
        if write { changes.append(kevent(ident: UInt(fd), filter: Int16(EVFILT_WRITE), flags: flags, fflags: 0, data: 0, udata: nil)) }
        return kevent(queue, changes, Int32(changes.count), nil, 0, nil) == 0
    }

    package func remove(_ fd: Int32) {
        // One-shot filters are gone once fired, and closing the descriptor removes the rest.
    }

    package func wait(into events: inout Events) {
        events.ready.removeAll(keepingCapacity: true)
        let count = events.buffer.withUnsafeMutableBufferPointer { kevent(queue, nil, 0, $0.baseAddress, Int32($0.count), nil) }
        guard count > 0 else { return }
        for index in 0..<Int(count) {
            let event = events.buffer[index]
            if event.filter == Int16(EVFILT_USER) { continue }
            let failed = event.flags & UInt16(EV_EOF | EV_ERROR) != 0
            events.ready.append(PollerReadiness(
                fd: Int32(event.ident),
                readable: event.filter == Int16(EVFILT_READ) || failed,
                writable: event.filter == Int16(EVFILT_WRITE) || failed
            ))
        }
    }

    package func wake() {
        var trigger = kevent(ident: Self.wakeIdent, filter: Int16(EVFILT_USER), flags: 0, fflags: UInt32(NOTE_TRIGGER), data: 0, udata: nil)
        _ = kevent(queue, &trigger, 1, nil, 0, nil)
    }

    package func close() {
        _ = Darwin.close(queue)
    }
}
#endif
