import Foundation

/// The demo executable run as a subprocess, its output collected as it arrives.
final class DemoProcess: Sendable {
    private let child: ChildProcess

    /// The demo binary, built next to the test bundle by `swift test`.
    static var executable: URL {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0])
        var directory = bundle.deletingLastPathComponent()
        while directory.path != "/" && !directory.lastPathComponent.hasSuffix("debug") && !directory.lastPathComponent.hasSuffix("release") {
            directory.deleteLastPathComponent()
        }
        return directory.appendingPathComponent("EventStreamDemo")
    }

    /// Runs the demo with `arguments`, or, given `launcher`, runs `launcher` with the
    /// demo's path and `arguments` after its own (e.g. `prlimit --nofile=48`).
    init(_ arguments: [String], launcher: [String] = []) throws {
        if let tool = launcher.first {
            child = try ChildProcess(tool, Array(launcher.dropFirst()) + [Self.executable.path] + arguments)
        } else {
            child = try ChildProcess(Self.executable.path, arguments)
        }
    }

    var stdoutLines: [String] {
        String(decoding: child.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    var stderrText: String { String(decoding: child.stderr, as: UTF8.self) }
    var stdoutText: String { String(decoding: child.stdout, as: UTF8.self) }

    var isRunning: Bool { child.isRunning }

    var processIdentifier: Int32 { child.processIdentifier }

    /// The exit status once it has exited; 128 + the signal if a signal ended it.
    var status: Int32 {
        switch child.termination {
        case .exited(let code): code
        case .signalled(let signal): 128 + signal
        case nil: -1
        }
    }

    func terminate() {
        child.terminate()
    }
}
