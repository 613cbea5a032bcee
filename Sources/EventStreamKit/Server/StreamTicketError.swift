/// Why ``StreamTickets/issue(for:channels:)`` refused a ticket.
public struct StreamTicketError: Error, CustomStringConvertible, Sendable {
    private enum Base: Sendable {
        case full(capacity: Int)
        case sourceFull(perSource: Int)
    }

    private let base: Base

    /// When the oldest ticket in the way expires, making room: say it in `Retry-After`.
    public let retryAfter: Duration

    static func full(capacity: Int, retryAfter: Duration) -> StreamTicketError {
        StreamTicketError(base: .full(capacity: capacity), retryAfter: retryAfter)
    }

    static func sourceFull(perSource: Int, retryAfter: Duration) -> StreamTicketError {
        StreamTicketError(base: .sourceFull(perSource: perSource), retryAfter: retryAfter)
    }

    /// Whether the limit was the one per source, rather than the store's.
    public var isPerSource: Bool {
        if case .sourceFull = base { return true }
        return false
    }

    /// Says the wait in whole seconds, rounded up: apps send this text to the client, and the
    /// store's oldest ticket is often another user's, whose issue time (to the nanosecond,
    /// as ``retryAfter`` has it) is none of the client's business.
    public var description: String {
        let (whole, fraction) = retryAfter.components
        let seconds = max(0, whole + (fraction > 0 ? 1 : 0))
        return switch base {
        case .full(let capacity): "\(capacity) stream tickets are outstanding, the most held; the oldest expires in \(seconds) s"
        case .sourceFull(let perSource): "this source has \(perSource) stream tickets outstanding, the most held per source; the oldest expires in \(seconds) s"
        }
    }
}
