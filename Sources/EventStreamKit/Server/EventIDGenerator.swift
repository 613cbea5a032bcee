/// Makes the ID of each event the hub sends, from a sequence number that starts at 1 and
/// grows by one per event.
///
/// The default, ``epochSequence(epoch:)``, writes `<epoch>-<sequence>`, where the epoch is
/// random per server start: a `Last-Event-ID` from before a restart is then recognised as
/// a gap instead of being mistaken for an ID of this run.
public struct EventIDGenerator: Sendable {
    private let body: @Sendable (UInt64) -> String

    /// A custom generator. The IDs it returns must be unique within the backlog, and must
    /// not contain CR, LF or NUL (a send with such an ID throws).
    ///
    /// - Parameter body: Makes an ID from the sequence number (1, 2, 3, …).
    public init(_ body: @escaping @Sendable (UInt64) -> String) {
        self.body = body
    }

    /// IDs of the form `<epoch>-<sequence>`, e.g. `k2x9qz-42`.
    ///
    /// - Parameter epoch: Identifies this run of the server. Default: random.
    public static func epochSequence(epoch: String = String(UInt32.random(in: .min ... .max), radix: 36)) -> EventIDGenerator {
        EventIDGenerator { "\(epoch)-\($0)" }
    }

    func id(for sequence: UInt64) -> String { body(sequence) }
}
