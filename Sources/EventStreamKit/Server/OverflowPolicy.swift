/// What a connection does when its queue is full because its client reads too slowly.
///
/// A queue is full when it holds ``EventServer/Configuration/queueCapacity`` frames or when
/// the next frame would take it past ``EventServer/Configuration/queueByteLimit`` bytes: the
/// policy applies to whichever limit is hit first. An empty queue always takes a frame, even
/// one larger than the byte limit, so that it can be delivered.
///
/// Whatever the policy, a stalled client never delays delivery to the others and never
/// holds more than its queue's limits (plus one oversized frame, and, with
/// ``suspendSender(timeout:)``, one frame per suspended sender). Every frame that is not
/// delivered is counted and reported as ``LifecycleEvent/droppedEvents(source:connection:count:)``.
public struct OverflowPolicy: Hashable, Sendable, CustomStringConvertible {
    enum Kind: Hashable, Sendable {
        case dropOldest
        case disconnect
        case suspendSender(Duration)
        case coalesce
    }

    let kind: Kind

    /// Drop the oldest queued frames, as many as it takes, to make room for the new one (a
    /// large frame may push out several small ones). The client sees a gap, which it can
    /// notice by its event IDs. The default.
    public static let dropOldest = OverflowPolicy(kind: .dropOldest)

    /// Disconnect the client; its queued frames are dropped. It reconnects with
    /// `Last-Event-ID` and catches up from the backlog, if that still holds its place.
    public static let disconnect = OverflowPolicy(kind: .disconnect)

    /// Make the sender wait, up to `timeout`, until the client has room; then disconnect
    /// it. Nothing is lost while the client keeps up within the timeout, at the price of
    /// slowing every `send` that includes it (seed 004's blocking buffer).
    public static func suspendSender(timeout: Duration) -> OverflowPolicy {
        OverflowPolicy(kind: .suspendSender(timeout))
    }

    /// Keep only the newest queued frame per event name; then, if less than a quarter of
    /// the queue's frames or of its bytes is free (the new frame counted), drop the oldest
    /// frames until a quarter of both is (merging scans the queue, so it frees enough for
    /// the next quarter of frames). Right for tickers and presence, where only the latest
    /// value matters.
    public static let coalesce = OverflowPolicy(kind: .coalesce)

    public var description: String {
        switch kind {
        case .dropOldest: "dropOldest"
        case .disconnect: "disconnect"
        case .suspendSender(let timeout): "suspendSender(timeout: \(timeout))"
        case .coalesce: "coalesce"
        }
    }
}
