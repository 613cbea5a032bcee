/// An error from the hub.
public struct EventServerError: Error, CustomStringConvertible, Sendable {
    /// What kind of error this is. New codes may be added in later versions.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Base: Hashable, Sendable { case duplicateSource, shutDown, alreadyConsumed, logUnavailable, unsupportedInCluster, invalidCluster }
        let base: Base

        /// The source already has a stream and the policy is ``DuplicateSourcePolicy/refuseNew``.
        public static let duplicateSource = Code(base: .duplicateSource)
        /// The server is shutting down or has shut down: it accepts no new connections.
        public static let shutDown = Code(base: .shutDown)
        /// A connection's stream was read a second time; it has one reader.
        public static let alreadyConsumed = Code(base: .alreadyConsumed)
        /// In a cluster: the event log (Redis) did not confirm the event, or this node does not
        /// read the log yet. Most likely nothing was sent; when Redis failed after it received
        /// the event, it may have been, and a retry may deliver it twice.
        public static let logUnavailable = Code(base: .logUnavailable)
        /// In a cluster: the call has no cluster-wide meaning.
        public static let unsupportedInCluster = Code(base: .unsupportedInCluster)
        /// The cluster's settings are unusable (a malformed Redis URL).
        public static let invalidCluster = Code(base: .invalidCluster)

        public var description: String { String(describing: base) }
    }

    /// What kind of error this is.
    public let code: Code
    private let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    static func duplicateSource(_ source: some Sendable) -> EventServerError {
        EventServerError(.duplicateSource, "source \(source) is already connected, and the duplicate-source policy refuses a second connection")
    }

    static let shutDown = EventServerError(.shutDown, "the event server is shut down and accepts no new connections")

    static func unsupportedInCluster(_ what: String) -> EventServerError {
        EventServerError(.unsupportedInCluster, "a hub in a cluster cannot send \(what)")
    }

    static let alreadyConsumed = EventServerError(.alreadyConsumed, "this connection's stream is already being read; a connection has exactly one reader")
}
