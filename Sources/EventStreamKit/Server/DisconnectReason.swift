/// Why a connection ended.
public struct DisconnectReason: Hashable, Sendable, CustomStringConvertible {
    enum Kind: Hashable, Sendable {
        case clientGone, closedByServer, slowClient, replaced, evicted, channelClosed, shutdown, cancelled
    }

    let kind: Kind

    /// Writing to the client failed, or the body's consumer stopped reading.
    public static let clientGone = DisconnectReason(kind: .clientGone)
    /// The application closed it (``EventServer/close(source:)`` or ``EventConnection/close()``).
    public static let closedByServer = DisconnectReason(kind: .closedByServer)
    /// Its queue overflowed under the ``OverflowPolicy/disconnect`` policy, or a suspended
    /// sender timed out.
    public static let slowClient = DisconnectReason(kind: .slowClient)
    /// A newer connection with the same source replaced it (``DuplicateSourcePolicy/replaceExisting``).
    public static let replaced = DisconnectReason(kind: .replaced)
    /// The source had too many connections and this was the oldest (``DuplicateSourcePolicy/limit(_:)``).
    public static let evicted = DisconnectReason(kind: .evicted)
    /// A channel it subscribed to was closed.
    public static let channelClosed = DisconnectReason(kind: .channelClosed)
    /// The server shut down or restarted.
    public static let shutdown = DisconnectReason(kind: .shutdown)
    /// The task consuming the stream was cancelled.
    public static let cancelled = DisconnectReason(kind: .cancelled)

    public var description: String {
        // Spelled out: `String(describing:)` on the enum goes through reflection, about 113,000
        // instructions per closed stream (Benchmarks/profile.sh), which counts under churn.
        switch kind {
        case .clientGone: "clientGone"
        case .closedByServer: "closedByServer"
        case .slowClient: "slowClient"
        case .replaced: "replaced"
        case .evicted: "evicted"
        case .channelClosed: "channelClosed"
        case .shutdown: "shutdown"
        case .cancelled: "cancelled"
        }
    }
}
