import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A child process started with `posix_spawn`, its standard output and error collected as they
/// arrive, reaped by a thread of its own.
///
/// Not Foundation's `Process`: on Linux with Swift 6.3.1, `Process.run()` copies a whole
/// 256-byte `d_name` out of each `readdir` record while it lists `/proc/self/fd`, and crashes
/// the caller when a record ends a page (swiftlang/swift-corelibs-foundation#5472). Here it
/// crashed the test process in `DemoProcess.init` once in five full runs with both cores busy.
///
/// The child gets `/dev/null` as standard input and no other descriptor of ours: every
/// descriptor from 3 up is closed in it, so that a socket a test closes is really closed.
final class ChildProcess: Sendable {
    struct SpawnError: Error {
        let call: String
        let code: Int32
    }

    /// How a child ended.
    enum Termination: Equatable, Sendable {
        case exited(Int32)
        case signalled(Int32)
    }

    private struct State {
        var stdout: [UInt8] = []
        var stderr: [UInt8] = []
        var termination: Termination?
        var openPipes = 2
    }

    let processIdentifier: pid_t
    private let state = Mutex(State())

    /// Starts `executable` (a path) with `arguments`.
    init(_ executable: String, _ arguments: [String]) throws {
        var outPipe: [Int32] = [0, 0]
        var errPipe: [Int32] = [0, 0]
        // Our spawns close every inherited descriptor from 3 up, so FD_CLOEXEC set after
        // pipe() (pipe2 is not imported) has no window that matters.
        guard pipe(&outPipe) == 0 else { throw SpawnError(call: "pipe", code: errno) }
        guard pipe(&errPipe) == 0 else {
            close(outPipe[0]); close(outPipe[1])
            throw SpawnError(call: "pipe", code: errno)
        }
        for fd in outPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        if let closeFrom = Self.addCloseFrom { _ = closeFrom(&actions, 3) }

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        // The child starts with no signal blocked and the usual signals at their default
        // actions: a spawn from a thread of the cooperative pool would otherwise pass on that
        // thread's mask, and a SIGTERM sent to the child would wait forever (redis-server
        // never stopped).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGPIPE, SIGHUP, SIGUSR1] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        close(outPipe[1])
        close(errPipe[1])
        guard result == 0 else {
            close(outPipe[0]); close(errPipe[0])
            throw SpawnError(call: "posix_spawn \(executable)", code: result)
        }
        let spawned = pid
        processIdentifier = spawned
        collect(outPipe[0], into: \.stdout)
        collect(errPipe[0], into: \.stderr)
        Thread.detachNewThread { [self] in
            // Wait without reaping, record the end, then reap: `terminate()` signals under the
            // lock, so it never reaches a process that reused the identifier.
            var info = siginfo_t()
            while waitid(P_PID, id_t(spawned), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR {}
            var status: Int32 = 0
            state.withLock { state in
                while waitpid(spawned, &status, 0) < 0 && errno == EINTR {}
                let signal = status & 0x7f
                state.termination = signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
            }
        }
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which Swift does not
    /// import (it needs `_GNU_SOURCE`).
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    /// Reads `fd` on a thread of its own until end of file.
    private func collect(_ fd: Int32, into field: any WritableKeyPath<State, [UInt8]> & Sendable) {
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                state.withLock { $0[keyPath: field] += buffer[..<count] }
            }
            close(fd)
            state.withLock { $0.openPipes -= 1 }
        }
    }

    var stdout: [UInt8] { state.withLock { $0.stdout } }
    var stderr: [UInt8] { state.withLock { $0.stderr } }

    /// Whether the child has not ended yet.
    var isRunning: Bool { state.withLock { $0.termination == nil } }

    /// How it ended, once it has.
    var termination: Termination? { state.withLock { $0.termination } }

    /// Whether it has ended and everything it wrote has been read.
    var isFinished: Bool { state.withLock { $0.termination != nil && $0.openPipes == 0 } }

    /// Sends `signal` (SIGTERM by default) if the child is still running.
    func terminate(_ signal: Int32 = SIGTERM) {
        state.withLock { state in
            if state.termination == nil { kill(processIdentifier, signal) }
        }
    }
}
