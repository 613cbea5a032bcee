import Foundation
import Synchronization

/// The demo server under test, as a child process: started on port 0, its URL read from the
/// first line it prints, its log (one line per connect and disconnect) read to the end on a
/// thread of its own and only counted, so that the pipe never fills and blocks the server.
final class ServerProcess: Sendable {
    /// What the server's log said, counted by kind.
    struct LogCounts: Sendable {
        var connects = 0
        var reconnects = 0
        var replayGaps = 0
        var droppedLines = 0
        var droppedEvents = 0
        var disconnects: [String: Int] = [:]
        var other = 0
        var otherSamples: [String] = []
    }

    let process: Process
    let url: String
    let port: UInt16
    let pid: Int32
    private let counts = Mutex(LogCounts())
    private let logDone = DispatchSemaphore(value: 0)

    init(binary: String, backlog: Int) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        // Thousands of users sign in at the start: above the demo's default sign-in rate; and
        // one user publishes everything (hundreds a second): above its per-user notify rate.
        process.arguments = ["serve", "--port", "0", "--news-interval", "0", "--backlog", String(backlog), "--signin-rate", "10000", "--notify-rate", "100000"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        self.process = process
        pid = process.processIdentifier

        // The first line is the URL; read it here, byte by byte, so nothing after it is consumed.
        let handle = pipe.fileHandleForReading
        var first: [UInt8] = []
        while true {
            let byte = handle.readData(ofLength: 1)
            guard let value = byte.first else { throw SoakError("the server exited before printing its URL") }
            if value == 10 { break }
            first.append(value)
        }
        let line = String(decoding: first, as: UTF8.self)
        guard let start = line.range(of: "http://"), let end = line[start.upperBound...].firstIndex(of: "/") else {
            throw SoakError("unexpected first line from the server: \(line)")
        }
        url = String(line[start.lowerBound..<end])
        guard let colon = url.lastIndex(of: ":"), let port = UInt16(url[url.index(after: colon)...]) else {
            throw SoakError("no port in \(url)")
        }
        self.port = port

        let thread = Thread { [self] in
            var pending: [UInt8] = []
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                pending.append(contentsOf: data)
                var lineStart = 0
                for index in pending.indices where pending[index] == 10 {
                    let text = String(decoding: pending[lineStart..<index], as: UTF8.self)
                    count(text)
                    lineStart = index + 1
                }
                pending.removeFirst(lineStart)
            }
            logDone.signal()
        }
        thread.start()
    }

    private func count(_ line: String) {
        counts.withLock { counts in
            if line.hasPrefix("connect ") {
                counts.connects += 1
            } else if line.hasPrefix("reconnect ") {
                counts.reconnects += 1
            } else if line.hasPrefix("replay gap ") {
                counts.replayGaps += 1
            } else if line.hasPrefix("dropped ") {
                counts.droppedLines += 1
                counts.droppedEvents += Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
            } else if line.hasPrefix("disconnect ") {
                let reason = line.lastIndex(of: "(").map { String(line[line.index(after: $0)...].dropLast()) } ?? "?"
                counts.disconnects[reason, default: 0] += 1
            } else {
                counts.other += 1
                if counts.otherSamples.count < 10 { counts.otherSamples.append(line) }
            }
        }
    }

    var logCounts: LogCounts { counts.withLock { $0 } }

    /// Resident set size in bytes, from `/proc/PID/status` (VmRSS).
    var residentBytes: Int { Self.residentBytes(of: pid) }

    /// Open descriptors: entries of `/proc/PID/fd`.
    var openDescriptors: Int { Self.openDescriptors(of: pid) }

    static func residentBytes(of pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return -1 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 2, let kib = Int(fields[1]) { return kib * 1024 }
        }
        return -1
    }

    static func openDescriptors(of pid: Int32) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    /// SIGTERM, then waits up to `grace` for the exit (SIGKILL after that). Returns the exit
    /// status, or nil if it had to be killed.
    func stop(grace: Double = 15) -> Int32? {
        guard process.isRunning else { return process.terminationStatus }
        process.terminate()
        let deadline = Date().addingTimeInterval(grace)
        while process.isRunning, Date() < deadline { usleep(50_000) }
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        _ = logDone.wait(timeout: .now() + 5)
        return process.terminationStatus
    }
}

/// The server's `/stats`, the figures the soak reports.
struct ServerStats {
    var clients = 0
    var eventsSent = 0
    var deliveries = 0
    var droppedFrames = 0
    var backlogSize = 0

    /// Fetches `/stats` on a connection of its own, closed afterwards, so that the probe
    /// holds no descriptor in the server between samples.
    static func fetch(port: UInt16) -> ServerStats? {
        let http = MiniHTTP(port: port)
        defer { http.close() }
        guard let response = try? http.request("GET", "/stats", close: true), response.status == 200,
              let object = try? JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any]
        else { return nil }
        var stats = ServerStats()
        stats.clients = object["clients"] as? Int ?? -1
        stats.eventsSent = object["eventsSent"] as? Int ?? -1
        stats.deliveries = object["deliveries"] as? Int ?? -1
        stats.droppedFrames = object["droppedFrames"] as? Int ?? -1
        stats.backlogSize = object["backlogSize"] as? Int ?? -1
        return stats
    }
}

struct SoakError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The 1-minute load average, from `/proc/loadavg`.
func loadAverage() -> String {
    guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return "?" }
    return text.split(separator: " ").prefix(3).joined(separator: " ")
}
