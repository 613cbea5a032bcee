/// An open HTTP response whose body an ``EventSource`` reads: from the built-in client or
/// from `URLSession`. Owned by one iterator; releasing it closes the connection.
protocol EventStreamResponse: AnyObject {
    /// The status code.
    var status: Int { get }
    /// The header fields.
    var headers: HeaderFields { get }
    /// Ends a pending or later ``read(into:)`` from any thread: it returns end of body.
    var interrupt: @Sendable () -> Void { get }

    /// Appends the next body bytes (at least one) to `buffer`.
    ///
    /// - Returns: `false` at the end of the body.
    /// - Throws: A network error, a malformed body, or `CancellationError`.
    nonisolated(nonsending) func read(into buffer: inout [UInt8]) async throws -> Bool
}
