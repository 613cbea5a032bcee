/// Runs `operation`, failing with `error` if it has not finished within `timeout`.
///
/// The operation is cancelled when the time is up; as with any child task, this returns only
/// once it has ended, so an operation that ignores cancellation still holds its caller.
func withTimeout<T: Sendable>(
    _ timeout: Duration,
    orThrow error: @escaping @autoclosure @Sendable () -> any Error,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        guard let result = try await group.next(), let value = result else { throw error() }
        return value
    }
}
