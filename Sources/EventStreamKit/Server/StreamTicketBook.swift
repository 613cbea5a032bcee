/// The outstanding tickets of a ``StreamTickets`` and the policy that bounds them: a pure
/// value, with no clock, no lock and no randomness of its own (the facade holds all three).
///
/// - A ticket redeems at most once: ``redeem(_:at:)`` removes it, whatever it answers.
/// - A ticket is valid while `now < issued + lifetime`; an expired one never redeems.
/// - At most `capacity` tickets are held, expired ones included until swept, and at most
///   `perSource` per source. Every ``issue(_:for:at:)`` first sweeps the expired ones; past a
///   limit the new ticket is refused, never an older one evicted: a flood cannot cancel the
///   tickets of others, who are about to redeem them.
///
/// Sweeping is amortized O(1): tickets share one lifetime, so they expire in the order they
/// were issued, and a queue in that order is trimmed from its front.
struct StreamTicketBook<SourceID: Hashable & Sendable>: Sendable {
    typealias Grant = StreamTickets<SourceID>.Grant

    /// What ``issue(_:for:at:)`` did.
    enum Issue: Equatable, Sendable {
        case issued
        /// `capacity` tickets are outstanding; the oldest expires after `retryAfter`.
        case full(retryAfter: Duration)
        /// The source has `perSource` tickets outstanding; its oldest expires after `retryAfter`.
        case sourceFull(retryAfter: Duration)
        /// A ticket with the same selector is outstanding (one chance in 2^64 per ticket held):
        /// draw another.
        case selectorTaken
    }

    private struct Entry: Sendable {
        let verifier: UInt64
        let grant: Grant
        let expiresAt: ContinuousClock.Instant
    }

    let limits: StreamTickets<SourceID>.Limits
    private var entries: [UInt64: Entry] = [:]
    /// Each source's outstanding expiries, oldest first (at most `perSource`).
    private var expiriesBySource: [SourceID: [ContinuousClock.Instant]] = [:]
    /// Every ticket issued and not yet swept, in issue order: redeemed ones stay until their
    /// expiry comes up (or a compaction drops them).
    private var queue: [(selector: UInt64, expiresAt: ContinuousClock.Instant)] = []
    private var head = 0

    init(limits: StreamTickets<SourceID>.Limits) {
        self.limits = limits
    }

    /// Tickets held, expired ones included until swept.
    var count: Int { entries.count }

    /// Entries in the sweep queue (for the tests of its bound).
    var queuedCount: Int { queue.count - head }

    /// Holds `ticket` for `grant` until `now + lifetime`, or refuses it as the type's
    /// discussion says.
    mutating func issue(_ ticket: StreamTicket, for grant: Grant, at now: ContinuousClock.Instant) -> Issue {
        sweep(at: now)
        guard entries[ticket.selector] == nil else { return .selectorTaken }
        let own = expiriesBySource[grant.source] ?? []
        if own.count >= limits.perSource {
            return .sourceFull(retryAfter: max(.zero, own[0] - now))
        }
        if entries.count >= limits.capacity {
            // After the sweep, the queue's front is the oldest ticket held.
            let oldest = head < queue.count ? queue[head].expiresAt : now + limits.lifetime
            return .full(retryAfter: max(.zero, oldest - now))
        }
        let expiresAt = now + limits.lifetime
        entries[ticket.selector] = Entry(verifier: ticket.verifier, grant: grant, expiresAt: expiresAt)
        expiriesBySource[grant.source, default: []].append(expiresAt)
        queue.append((ticket.selector, expiresAt))
        compactIfSparse()
        return .issued
    }

    /// The grant `ticket` was issued for, if it is held and unexpired at `now`. Removes it
    /// either way (a wrong verifier removes nothing: it is not this ticket).
    mutating func redeem(_ ticket: StreamTicket, at now: ContinuousClock.Instant) -> Grant? {
        // One comparison of two machine words: no early exit on the first differing digit.
        guard let entry = entries[ticket.selector], entry.verifier == ticket.verifier else { return nil }
        remove(ticket.selector, entry)
        return now < entry.expiresAt ? entry.grant : nil
    }

    /// Forgets every ticket expired at `now`.
    mutating func sweep(at now: ContinuousClock.Instant) {
        // Also drops redeemed tickets from the front, so that the front is the oldest held.
        while head < queue.count {
            let (selector, expiresAt) = queue[head]
            // The same selector may have been redeemed and issued again since: compare expiries.
            let held = entries[selector].flatMap { $0.expiresAt == expiresAt ? $0 : nil }
            if let held {
                guard expiresAt <= now else { break }
                remove(selector, held)
            }
            head += 1
        }
        if head == queue.count {
            queue.removeAll(keepingCapacity: queue.count <= 1024)
            head = 0
        } else if head >= 1024 && head * 2 >= queue.count {
            queue.removeFirst(head)
            head = 0
        }
    }

    private mutating func remove(_ selector: UInt64, _ entry: Entry) {
        entries[selector] = nil
        let source = entry.grant.source
        if var own = expiriesBySource[source], let index = own.firstIndex(of: entry.expiresAt) {
            own.remove(at: index)
            expiriesBySource[source] = own.isEmpty ? nil : own
        }
    }

    /// Redeemed tickets wait in the queue until their expiry; when they are most of it (many
    /// issued and redeemed within one lifetime), the queue is rebuilt from the held ones, so
    /// it never holds more than twice `capacity` plus 1024.
    private mutating func compactIfSparse() {
        guard queue.count - head > 2 * limits.capacity + 1024 else { return }
        queue = queue[head...].filter { entries[$0.selector]?.expiresAt == $0.expiresAt }
        head = 0
    }
}
