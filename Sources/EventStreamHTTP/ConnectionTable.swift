import EventStreamKit

/// The server's open connections and their deadlines: a pure state machine, with no locks,
/// sockets or clocks of its own. ``HTTPServer`` runs it under its `Mutex`, performs what it
/// returns, and the tests drive it directly.
///
/// Every connection is known by a ``Handle``: its descriptor *and* a generation that no other
/// connection ever gets. A descriptor number is reused by the kernel as soon as it is closed,
/// so acting on a bare number after its connection ended would hit an innocent new one.
/// Here nothing can: every operation names a handle, and one that is not current is refused.
/// The server performs an expiry's shutdown under the same lock that releases a connection
/// before its descriptor is closed, so a handle that is current is still open.
///
/// (Docs/Decisions/0005-connection-handles.md)
///
/// `Cancel` is what a source resolver's deadline runs when it passes (a closure in the
/// server, a token in tests).
struct ConnectionTable<Cancel> {
    /// One connection: its descriptor, and a generation unique in this table's life.
    struct Handle: Hashable, Sendable, CustomStringConvertible {
        let fd: Int32
        let generation: UInt64

        var description: String { "#\(generation) (fd \(fd))" }
    }

    /// What a connection is waiting for, and so what passing its deadline means.
    enum Phase: Hashable, Sendable {
        /// The next request head (also between keep-alive requests): closed when it passes.
        case head
        /// The body of a request whose head has arrived: closed.
        case body
        /// A client to read a response whose write is blocked: closed.
        case write
        /// A client to send its last bytes after an error answer (a lingering close): closed.
        case linger
        /// A source resolver to answer: cancelled (the request is then answered 503).
        case resolver
    }

    struct Deadline {
        var phase: Phase
        var instant: ContinuousClock.Instant
        /// For ``Phase/resolver``.
        var cancel: Cancel?
    }

    /// What passing a deadline asks the server to do.
    enum Expiry {
        /// Shut the connection's socket down: its task wakes, fails and releases it.
        case shutDown(Handle, Phase)
        /// Cancel the connection's source resolver.
        case cancel(Handle, Cancel)
    }

    enum Admission: Equatable {
        case admitted(Handle)
        /// ``maxConnections`` are open.
        case full
        /// The server is stopping.
        case stopping
    }

    private struct Entry {
        let generation: UInt64
        /// Waiting for the next request head with nothing of it received: a graceful stop
        /// closes it at once.
        var isIdle = false
        /// Its socket was shut down by an expiry or the stop: it only waits to be released.
        var isShutDown = false
    }

    let maxConnections: Int
    private var entries: [Int32: Entry] = [:]
    /// Only connections that have a deadline, so that a sweep does not visit idle streams.
    private var deadlines: [Int32: Deadline] = [:]
    private var lastGeneration: UInt64 = 0
    private(set) var isStopping = false

    init(maxConnections: Int) {
        self.maxConnections = maxConnections
    }

    /// Open connections.
    var count: Int { entries.count }

    /// Connections with a deadline.
    var deadlineCount: Int { deadlines.count }

    /// Whether `handle` is an open connection that was not shut down.
    func isCurrent(_ handle: Handle) -> Bool {
        guard let entry = entries[handle.fd] else { return false }
        return entry.generation == handle.generation && !entry.isShutDown
    }

    /// The deadline `handle` has, if any.
    func deadline(of handle: Handle) -> Deadline? {
        guard entries[handle.fd]?.generation == handle.generation else { return nil }
        return deadlines[handle.fd]
    }

    /// Admits a connection just accepted on `fd`.
    mutating func admit(_ fd: Int32) -> Admission {
        guard !isStopping else { return .stopping }
        guard entries.count < maxConnections else { return .full }
        // The kernel hands out a number only once it was closed, and a connection is
        // released before its descriptor is closed: `fd` has no entry.
        assert(entries[fd] == nil, "descriptor \(fd) accepted while its previous connection is in the table")
        lastGeneration += 1
        entries[fd] = Entry(generation: lastGeneration)
        deadlines[fd] = nil
        return .admitted(Handle(fd: fd, generation: lastGeneration))
    }

    /// Forgets a connection, before its descriptor is closed. Returns `false` if `handle` was
    /// not current (released already).
    @discardableResult
    mutating func release(_ handle: Handle) -> Bool {
        guard entries[handle.fd]?.generation == handle.generation else { return false }
        entries[handle.fd] = nil
        deadlines[handle.fd] = nil
        return true
    }

    /// Sets what `handle` waits for and until when (`nil`: nothing, no deadline), and whether
    /// it is idle. Returns `false` if the connection is gone or was shut down: its task should
    /// stop.
    @discardableResult
    mutating func setDeadline(_ deadline: Deadline?, for handle: Handle, isIdle: Bool = false) -> Bool {
        guard var entry = entries[handle.fd], entry.generation == handle.generation, !entry.isShutDown else { return false }
        entry.isIdle = isIdle
        entries[handle.fd] = entry
        deadlines[handle.fd] = deadline
        return true
    }

    /// Removes `handle`'s deadline if it is for `phase`. Returns `false` if it had expired
    /// (the sweep removed it) or the connection is gone.
    @discardableResult
    mutating func clearDeadline(_ phase: Phase, for handle: Handle) -> Bool {
        guard let entry = entries[handle.fd], entry.generation == handle.generation else { return false }
        guard let deadline = deadlines[handle.fd], deadline.phase == phase else { return false }
        deadlines[handle.fd] = nil
        return true
    }

    /// Every deadline that has passed at `now`, each removed; a connection to close is
    /// marked shut down.
    mutating func expire(now: ContinuousClock.Instant) -> [Expiry] {
        var expired: [Expiry] = []
        for (fd, deadline) in deadlines where deadline.instant <= now {
            guard let entry = entries[fd] else { continue }
            let handle = Handle(fd: fd, generation: entry.generation)
            if deadline.phase == .resolver, let cancel = deadline.cancel {
                expired.append(.cancel(handle, cancel))
            } else {
                entries[fd]?.isShutDown = true
                expired.append(.shutDown(handle, deadline.phase))
            }
        }
        for expiry in expired {
            switch expiry {
            case .shutDown(let handle, _), .cancel(let handle, _): deadlines[handle.fd] = nil
            }
        }
        return expired
    }

    /// No more admissions: the server is stopping.
    mutating func beginStopping() {
        isStopping = true
    }

    /// Ends a graceful stop: no more admissions, and the idle connections, returned marked
    /// shut down, are to be closed now; the others finish the request they are serving.
    mutating func stop() -> [Handle] {
        isStopping = true
        var idle: [Handle] = []
        for (fd, entry) in entries where entry.isIdle && !entry.isShutDown {
            entries[fd]?.isShutDown = true
            deadlines[fd] = nil
            idle.append(Handle(fd: fd, generation: entry.generation))
        }
        return idle
    }
}

extension ConnectionTable: Sendable where Cancel: Sendable {}
extension ConnectionTable.Deadline: Sendable where Cancel: Sendable {}
extension ConnectionTable.Expiry: Sendable where Cancel: Sendable {}
