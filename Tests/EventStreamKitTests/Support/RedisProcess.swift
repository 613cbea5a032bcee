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

    /// Starts a server and waits until it answers `PING`. The port is one the kernel just gave
    /// out and took back, so another test's connection can take it before the server binds:
    /// a server that exits before it answers is started again on another port (3 attempts).
    init(extraArguments: [String] = []) async throws {
        guard let executable = Self.executable else { throw Missing() }
        for attempt in 1...3 {
            let probe = try Socket.listen(host: "127.0.0.1", port: 0)
            let port = probe.localPort
            probe.close()
            let directory = NSTemporaryDirectory() + "esk-redis-\(port)-\(UInt32.random(in: 0...UInt32.max))"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let arguments = [
                "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", directory, "--daemonize", "no", "--loglevel", "warning",
            ] + extraArguments
            let child = try ChildProcess(executable, arguments)
            if try await Self.waitUntilReady(port: port, process: child) || attempt == 3 {
                self.port = port
                self.directory = directory
                self.arguments = arguments
                process = Mutex(child)
                guard child.isRunning else { throw StartFailed(port: port) }
                return
            }
        }
        fatalError("not reached: the third attempt returns or throws")
    }

    struct StartFailed: Error, CustomStringConvertible {
        let port: UInt16
        var description: String { "redis-server exited at start three times (last on port \(port))" }
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
        let child = process.withLock { $0 }
        guard try await Self.waitUntilReady(port: port, process: child) else { throw StartFailed(port: port) }
    }

    /// Waits until the server answers `PING` (`true`) or exits (`false`). While a restarted
    /// server loads its data it answers every command with `-LOADING`: not ready yet (a server
    /// with a password answers `-NOAUTH`: ready).
    private static func waitUntilReady(port: UInt16, process: ChildProcess) async throws -> Bool {
        let endpoint = RedisEndpoint(host: "127.0.0.1", port: port)
        try await waitUntil("redis-server on port \(port) answers PING or exits", timeout: .seconds(10)) {
            guard process.isRunning else { return true }
            guard let connection = try? await RedisConnection.connect(to: endpoint, timeout: .milliseconds(500)) else { return false }
            defer { connection.close() }
            guard let reply = (try? await connection.send([RESPValue.command(["PING"])]))?.first else { return false }
            if case .error(let message) = reply, message.hasPrefix("LOADING") { return false }
            return true
        }
        return process.isRunning
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
