@testable import EventStreamKit
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A `redis-server` the tests start themselves: 127.0.0.1 on a free port, a temporary
/// directory, no persistence, stopped (SIGKILL) when the test is done.
///
/// Where `redis-server` is missing the Redis suites are disabled, unless
/// `ESK_REQUIRE_REDIS=1` (set by `.ci/run`, which installs it): then they run and fail, so
/// that CI cannot pass with them skipped.
final class RedisProcess: Sendable {
    static let executable: String? = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static var isRequired: Bool { ProcessInfo.processInfo.environment["ESK_REQUIRE_REDIS"] == "1" }
    /// Whether the Redis suites run: the server exists, or CI requires them.
    static var shouldRun: Bool { executable != nil || isRequired }

    struct Missing: Error, CustomStringConvertible {
        var description: String { "redis-server is not installed (apt-get install redis-server); ESK_REQUIRE_REDIS=1 makes this a failure" }
    }

    let port: UInt16
    let directory: String
    private let arguments: [String]
    private let process: Mutex<ChildProcess>

    var endpoint: RedisEndpoint { RedisEndpoint(host: "127.0.0.1", port: port) }

    /// Starts a server and waits until it answers `PING`.
    init(extraArguments: [String] = []) async throws {
        guard let executable = Self.executable else { throw Missing() }
        let probe = try Socket.listen(host: "127.0.0.1", port: 0)
        port = probe.localPort
        probe.close()
        directory = NSTemporaryDirectory() + "esk-redis-\(port)-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        arguments = [
            "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", directory, "--daemonize", "no", "--loglevel", "warning",
        ] + extraArguments
        process = Mutex(try ChildProcess(executable, arguments))
        try await waitUntilReady()
    }

    /// Starts the server again on the same port and directory (with its data if it was
    /// started with persistence), after ``kill(_:)``.
    func restart() async throws {
        guard let executable = Self.executable else { throw Missing() }
        try await waitUntil("the previous redis-server on port \(port) has exited") { !self.isRunning }
        let fresh = try ChildProcess(executable, arguments)
        process.withLock { $0 = fresh }
        try await waitUntilReady()
    }

    private func waitUntilReady() async throws {
        let endpoint = self.endpoint
        let port = self.port
        try await waitUntil("redis-server on port \(port) answers PING", timeout: .seconds(10)) {
            guard let connection = try? await RedisConnection.connect(to: endpoint, timeout: .milliseconds(500)) else { return false }
            defer { connection.close() }
            return (try? await connection.send([RESPValue.command(["PING"])]))?.first != nil
        }
    }

    /// Waits until `count` clients are blocked in a blocking command (`INFO clients`).
    func waitUntilBlocked(_ count: Int = 1) async throws {
        let endpoint = self.endpoint
        let monitor = try await RedisConnection.connect(to: endpoint)
        defer { monitor.close() }
        try await waitUntil("\(count) blocked clients on \(endpoint)") {
            let info = (try? await monitor.send([RESPValue.command(["INFO", "clients"])]))?.first?.string ?? ""
            return info.contains("blocked_clients:\(count)\r\n")
        }
    }

    /// Whether the server process is still running.
    var isRunning: Bool { process.withLock { $0.isRunning } }

    /// Stops the server: SIGKILL by default, as a crash would; SIGTERM saves its data first
    /// (if it has persistence).
    func kill(_ signal: Int32 = SIGKILL) {
        process.withLock { $0.terminate(signal) }
    }

    deinit {
        process.withLock { $0.terminate(SIGKILL) }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
