import Foundation
import Synchronization

/// What a process wrote so far.
private final class Output: Sendable {
    let bytes = Mutex<(stdout: [UInt8], stderr: [UInt8])>(([], []))
}

/// The demo executable run as a subprocess, its output collected as it arrives.
final class DemoProcess: Sendable {
    private let process: Process
    private let output = Output()

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
        let process = Process()
        if let tool = launcher.first {
            process.executableURL = URL(fileURLWithPath: tool)
            process.arguments = Array(launcher.dropFirst()) + [Self.executable.path] + arguments
        } else {
            process.executableURL = Self.executable
            process.arguments = arguments
        }
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        self.process = process
        stdout.fileHandleForReading.readabilityHandler = { [output] handle in
            let data = handle.availableData
            output.bytes.withLock { $0.stdout += data }
        }
        stderr.fileHandleForReading.readabilityHandler = { [output] handle in
            let data = handle.availableData
            output.bytes.withLock { $0.stderr += data }
        }
        try process.run()
    }

    var stdoutLines: [String] {
        output.bytes.withLock { String(decoding: $0.stdout, as: UTF8.self) }.split(separator: "\n").map(String.init)
    }

    var stderrText: String { output.bytes.withLock { String(decoding: $0.stderr, as: UTF8.self) } }

    var isRunning: Bool { process.isRunning }

    var processIdentifier: Int32 { process.processIdentifier }

    /// The exit status, once it has exited.
    var status: Int32 { process.terminationStatus }

    func terminate() {
        if process.isRunning { process.terminate() }
    }
}
