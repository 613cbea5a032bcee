#if canImport(Glibc)
import CEventStreamSystem
import Glibc

/// epoll, armed one-shot per wait, with an eventfd to wake the thread.
package struct PollerBackend: Sendable {
    package struct Events {
        fileprivate var buffer = [epoll_event](repeating: epoll_event(), count: 256)
        package var ready: [PollerReadiness] = []
    }

    private let epoll: Int32
    private let wakeFD: Int32

    package init() throws(SocketError) {
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw SocketError("epoll_create1") }
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard wakeFD >= 0 else { throw SocketError("eventfd") }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = wakeFD
        guard epoll_ctl(epoll, EPOLL_CTL_ADD, wakeFD, &event) == 0 else { throw SocketError("epoll_ctl(eventfd)") }
    }

    /// Arms `fd` once for the given interests; `false` if the kernel refused.
    package func arm(_ fd: Int32, read: Bool, write: Bool, add: Bool) -> Bool {
        var event = epoll_event()
        event.events = EPOLLONESHOT.rawValue | (read ? EPOLLIN.rawValue | EPOLLRDHUP.rawValue : 0) | (write ? EPOLLOUT.rawValue : 0)
        event.data.fd = fd
        if epoll_ctl(epoll, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &event) == 0 { return true }
        // ADD on a descriptor number reused after close, or MOD after one was forgotten.
        return epoll_ctl(epoll, add ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &event) == 0
    }

    package func remove(_ fd: Int32) {
        var event = epoll_event()
        _ = epoll_ctl(epoll, EPOLL_CTL_DEL, fd, &event)
    }

    package func wait(into events: inout Events) {
        events.ready.removeAll(keepingCapacity: true)
        let count = events.buffer.withUnsafeMutableBufferPointer { epoll_wait(epoll, $0.baseAddress, Int32($0.count), -1) }
        guard count > 0 else { return }
        for index in 0..<Int(count) {
            let event = events.buffer[index]
            if event.data.fd == wakeFD {
                var value: UInt64 = 0
                _ = Glibc.read(wakeFD, &value, 8)
                continue
            }
            let bits = event.events
            let failed = bits & (EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0
            events.ready.append(PollerReadiness(
                fd: event.data.fd,
                readable: failed || bits & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue) != 0,
                writable: failed || bits & EPOLLOUT.rawValue != 0
            ))
        }
    }

    package func wake() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    package func close() {
        _ = Glibc.close(wakeFD)
        _ = Glibc.close(epoll)
    }
}
#endif
