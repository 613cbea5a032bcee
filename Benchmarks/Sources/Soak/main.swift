import EventStreamKit
import Foundation
import Synchronization

// A bounded soak of the demo server (issue 9, "Reliability"): a few thousand users connect,
// read and disconnect at random while events are broadcast and sent per user. At the end:
// no event lost or duplicated for a client that reconnected within the backlog, the server's
// resident memory flat after warm-up, its open descriptors back to the baseline.
//
//   Soak --server-binary .build/release/EventStreamDemo [--duration 600] [--users 2000]
//        [--backlog 4096] [--broadcast-rate 4] [--user-rate 200]
//
// Benchmarks/soak.sh builds both and runs this bounded by `timeout`.

struct Options {
    var serverBinary = ""
    var duration = 600.0
    var users = 2000
    var backlog = 4096
    var broadcastRate = 4.0
    var userRate = 200.0
    var readRange = 1.0...20.0
    var pauseRange = 0.0...3.0
    var sampleInterval = 10.0

    static let usage = "usage: Soak --server-binary PATH [--duration SECONDS] [--users N] [--backlog N] [--broadcast-rate PER_S] [--user-rate PER_S]"

    init(parsing arguments: [String]) throws {
        var remaining = arguments[...]
        while let flag = remaining.popFirst() {
            guard let value = remaining.popFirst() else { throw SoakError("\(flag) needs a value\n\(Self.usage)") }
            func number(_ minimum: Double) throws -> Double {
                guard let number = Double(value), number >= minimum else { throw SoakError("\(flag) takes a number ≥ \(minimum), not \(value)") }
                return number
            }
            switch flag {
            case "--server-binary": serverBinary = value
            case "--duration": duration = try number(10)
            case "--users": users = Int(try number(1))
            case "--backlog": backlog = Int(try number(1))
            case "--broadcast-rate": broadcastRate = try number(0)
            case "--user-rate": userRate = try number(0)
            default: throw SoakError("unknown option \(flag)\n\(Self.usage)")
            }
        }
        guard !serverBinary.isEmpty else { throw SoakError("--server-binary is required\n\(Self.usage)") }
    }

    /// When memory counts as warmed up: 20% of the run, at least 10 s, at most 60 s.
    var warmUp: Double { min(60, max(10, duration * 0.2)) }
}

/// One sample of the server process (and a little of the client side).
struct Sample: Sendable {
    let seconds: Double
    let rss: Int
    let fds: Int
    let clients: Int
    let eventsSent: Int
    let droppedFrames: Int
    let load: String
    let clientRSS: Int
    let openSources: Int
}

func mib(_ bytes: Int) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }

func say(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeBytes { write(1, $0.baseAddress! + offset, bytes.count - offset) }
        if written <= 0 { return }
        offset += written
    }
}

/// Runs blocking work on a thread of its own, off the cooperative pool.
func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}

func raiseDescriptorLimit() -> Int {
    var limit = rlimit()
    #if canImport(Glibc)
    let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    let resource = RLIMIT_NOFILE
    #endif
    guard getrlimit(resource, &limit) == 0 else { return -1 }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(resource, &limit)
    _ = getrlimit(resource, &limit)
    return Int(limit.rlim_cur)
}

/// Samples the server every `interval` seconds on a thread, until stopped.
final class Sampler: Sendable {
    private let samples = Mutex<[Sample]>([])
    private let stopping = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)

    func start(server: ServerProcess, control: Control, interval: Double, origin: Date, progress: @escaping @Sendable (Sample) -> Void) {
        Thread { [self] in
            var next = interval
            while !stopping.load(ordering: .relaxed) {
                let now = Date().timeIntervalSince(origin)
                if now < next {
                    usleep(UInt32(min(0.25, next - now) * 1_000_000))
                    continue
                }
                let sample = take(server: server, control: control, at: now)
                samples.withLock { $0.append(sample) }
                progress(sample)
                next += interval
            }
            done.signal()
        }.start()
    }

    func take(server: ServerProcess, control: Control, at seconds: Double) -> Sample {
        let stats = ServerStats.fetch(port: server.port)
        // Descriptors after the probe's connection is closed on our side; the server closes
        // its end when it reads the EOF, so give it a moment.
        usleep(100_000)
        return Sample(
            seconds: seconds, rss: server.residentBytes, fds: server.openDescriptors,
            clients: stats?.clients ?? -1, eventsSent: stats?.eventsSent ?? -1, droppedFrames: stats?.droppedFrames ?? -1,
            load: loadAverage(), clientRSS: ServerProcess.residentBytes(of: getpid()), openSources: control.openCount
        )
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        done.wait()
    }

    var all: [Sample] { samples.withLock { $0 } }
}

nonisolated func soak(_ options: Options) async -> Int32 {
    let clientLimit = raiseDescriptorLimit()
    let start = Date()
    say("Soak: \(options.users) users, \(Int(options.duration)) s of churn (read \(Int(options.readRange.lowerBound))–\(Int(options.readRange.upperBound)) s, pause \(Int(options.pauseRange.lowerBound))–\(Int(options.pauseRange.upperBound)) s), \(options.broadcastRate) broadcasts/s + \(options.userRate) per-user events/s, backlog \(options.backlog)")
    say("client descriptor limit \(clientLimit); \(ProcessInfo.processInfo.activeProcessorCount) cores; load average \(loadAverage())")

    let server: ServerProcess
    do {
        server = try ServerProcess(binary: options.serverBinary, backlog: options.backlog)
    } catch {
        say("Soak: cannot start the server: \(error)")
        return 2
    }
    say("server pid \(server.pid) at \(server.url)")

    // Sign everyone in, and the publisher last, on one keep-alive connection, then close it.
    // The demo allows 20 sign-ins a second after a burst of 100: 2,000 users take about 95 s.
    let signInStart = Date()
    let signedIn: Result<(users: [String], publisher: String), MiniHTTP.Failure> = await offPool {
        let http = MiniHTTP(port: server.port)
        defer { http.close() }
        do {
            let users = try (0..<options.users).map { try http.signIn(userName($0)) }
            return .success((users, try http.signIn("soak-publisher")))
        } catch let error as MiniHTTP.Failure {
            return .failure(error)
        } catch {
            return .failure(MiniHTTP.Failure(description: "\(error)"))
        }
    }
    guard case .success(let (tokens, publisherToken)) = signedIn else {
        if case .failure(let error) = signedIn { say("Soak: sign-in failed: \(error)") }
        _ = server.stop()
        return 2
    }
    say(String(format: "signed in %d users and the publisher in %.1f s", options.users + 1, Date().timeIntervalSince(signInStart)))

    let control = Control()
    let sampler = Sampler()
    try? await Task.sleep(for: .seconds(2))
    let baseline = await offPool { sampler.take(server: server, control: control, at: 0) }
    say("baseline (no clients): server RSS \(mib(baseline.rss)), fds \(baseline.fds)")

    let records = (0..<options.users).map { _ in UserRecord() }
    let ledger = Ledger(users: options.users)
    let publisher = Publisher(port: server.port, token: publisherToken, users: options.users, ledger: ledger, broadcastRate: options.broadcastRate, perUserRate: options.userRate)

    let origin = Date()
    sampler.start(server: server, control: control, interval: options.sampleInterval, origin: origin) { sample in
        let received = records.reduce(0) { $0 + $1.snapshot.received.count }
        say(String(format: "t=%4.0fs  server RSS %@  fds %5d  streams %5d (client: %5d open, %7d connections, %9d events received, RSS %@)  sent %7d  dropped %d  load %@",
                   sample.seconds, mib(sample.rss), sample.fds, sample.clients, sample.openSources, control.connectionsOpened, received, mib(sample.clientRSS),
                   sample.eventsSent, sample.droppedFrames, sample.load))
    }

    // Drain, stop and verify, with the users running in a task group.
    let finalSequence = Mutex<Int?>(nil)
    var drainSeconds = 0.0
    var caughtUp = 0
    var loadedSample: Sample?
    await withDiscardingTaskGroup { group in
        let stagger = min(10, options.duration / 10)
        for index in 0..<options.users {
            let url = "\(server.url)/events?token=\(tokens[index])"
            let record = records[index]
            group.addTask {
                await runUser(index: index, url: url, record: record, control: control, startDelay: Double.random(in: 0...stagger),
                              readRange: options.readRange, pauseRange: options.pauseRange)
            }
        }
        publisher.start()
        try? await Task.sleep(for: .seconds(options.duration))

        loadedSample = await offPool { sampler.take(server: server, control: control, at: Date().timeIntervalSince(origin)) }
        await offPool { publisher.stop() }
        let last = await offPool { publisher.publishFinal() }
        finalSequence.withLock { $0 = last }
        say(String(format: "t=%4.0fs  publisher stopped: %d events; final broadcast server seq %@; draining", Date().timeIntervalSince(origin),
                   publisher.published, last.map(String.init) ?? "FAILED"))

        // The drain: no more churn; wait until every user has the final broadcast (it is the
        // last event addressed to everyone), at least the longest pause, at most 60 s.
        control.drain()
        let drainStart = Date()
        while true {
            try? await Task.sleep(for: .milliseconds(500))
            let elapsed = Date().timeIntervalSince(drainStart)
            caughtUp = last.map { final in records.reduce(0) { $0 + ($1.lastServerSequence >= final ? 1 : 0) } } ?? 0
            let settled = last.map { final in records.reduce(0) { $0 + ($1.isSettled(final: final) ? 1 : 0) } } ?? 0
            if elapsed >= options.pauseRange.upperBound + 1, settled == options.users || last == nil { break }
            if elapsed >= 60 { break }
        }
        drainSeconds = Date().timeIntervalSince(drainStart)
        say(String(format: "t=%4.0fs  drained in %.1f s: %d of %d users have the final broadcast; closing every stream", Date().timeIntervalSince(origin),
                   drainSeconds, caughtUp, options.users))
        control.stop()
    }
    sampler.stop()

    // Every client is gone: wait for the server to agree, then a few seconds more.
    let settleStart = Date()
    var lastClients = -1
    while Date().timeIntervalSince(settleStart) < 30 {
        lastClients = await offPool { ServerStats.fetch(port: server.port)?.clients ?? -1 }
        if lastClients == 0 { break }
        try? await Task.sleep(for: .milliseconds(500))
    }
    try? await Task.sleep(for: .seconds(5))
    let statsAtEnd = await offPool { ServerStats.fetch(port: server.port) }
    try? await Task.sleep(for: .seconds(1))
    let end = await offPool { sampler.take(server: server, control: control, at: Date().timeIntervalSince(origin)) }
    let exitStatus = await offPool { server.stop() }
    let log = server.logCounts

    // Verify.
    let broadcasts = ledger.broadcasts
    var total = Verdict()
    for index in 0..<options.users {
        total.add(verify(user: index, received: records[index].snapshot, expected: ledger.expected(for: index, broadcasts: broadcasts)))
    }
    let malformed = records.reduce(0) { $0 + $1.snapshot.malformed }
    let otherTypes = records.reduce(0) { $0 + $1.snapshot.otherTypes }
    let failures = ledger.failures

    let samples = sampler.all
    let warm = samples.first { $0.seconds >= options.warmUp } ?? samples.last ?? baseline
    let peak = samples.map(\.rss).max() ?? baseline.rss
    let rssLimit = Int(Double(warm.rss) * 1.2) + 5 * 1_048_576
    let fdLimit = baseline.fds + 5

    var problems: [String] = []
    if total.missing > 0 { problems.append("\(total.missing) event(s) lost outside gaps") }
    if total.duplicates > 0 { problems.append("\(total.duplicates) duplicate(s)") }
    if total.reordered > 0 { problems.append("\(total.reordered) event(s) out of order") }
    if total.unexpected > 0 { problems.append("\(total.unexpected) unexpected event(s)") }
    if total.mismatched > 0 { problems.append("\(total.mismatched) event(s) whose title did not match their ID") }
    if malformed > 0 { problems.append("\(malformed) malformed notification(s)") }
    if failures.count > 0 { problems.append("\(failures.count) publish request(s) failed") }
    if ledger.epochMismatches > 0 { problems.append("the event ID epoch changed \(ledger.epochMismatches) time(s)") }
    if end.fds > fdLimit { problems.append("server descriptors at the end \(end.fds) > baseline \(baseline.fds) + 5") }
    if end.rss > rssLimit { problems.append("server RSS at the end \(mib(end.rss)) > 1.2 × after warm-up (\(mib(warm.rss))) + 5 MiB") }
    if lastClients != 0 { problems.append("the server still counted \(lastClients) stream(s) 30 s after every client closed") }
    if exitStatus != 0 { problems.append(exitStatus == nil ? "the server did not stop on SIGTERM within 15 s (killed)" : "the server exited with status \(exitStatus!)") }

    let published = ledger.broadcastCount + ledger.perUserCount
    let elapsed = Date().timeIntervalSince(start)
    var report: [String] = []
    report.append("")
    report.append("==== Soak report ====")
    report.append(String(format: "run: %d users, %.0f s of churn + %.1f s drain (%.0f s in all), backlog %d, load average at the end %@",
                         options.users, options.duration, drainSeconds, elapsed, options.backlog, end.load))
    report.append("connections opened by the clients: \(control.connectionsOpened) (server log: \(log.connects) new + \(log.reconnects) with Last-Event-ID; disconnects \(log.disconnects.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))")
    report.append(String(format: "events published: %d (%d broadcasts, %d per-user; %.1f/s); publish failures %d; publisher fell >1 s behind %d time(s)",
                         published, ledger.broadcastCount, ledger.perUserCount, Double(published) / options.duration, failures.count, publisher.fellBehind))
    report.append("events received: \(total.received) of \(total.expected) expected from each user's first event on (users that received nothing: \(total.usersWithNothing); final broadcast reached \(caughtUp) of \(options.users) before the close)")
    report.append("missing (outside gaps): \(total.missing)   duplicates: \(total.duplicates)   out of order: \(total.reordered)   unexpected: \(total.unexpected)   title/ID mismatches: \(total.mismatched)")
    report.append("gaps: \(total.gapEvents) gap event(s) to \(total.usersWithGaps) user(s), covering \(total.missedInGaps) event(s); server log: \(log.replayGaps) replay gap(s), \(log.droppedEvents) event(s) dropped for slow clients (\(log.droppedLines) line(s)); /stats droppedFrames at the end \(statsAtEnd?.droppedFrames ?? -1)")
    if malformed + otherTypes > 0 { report.append("malformed notifications \(malformed), events of other types \(otherTypes)") }
    report.append("server RSS: baseline \(mib(baseline.rss)), after warm-up (t=\(Int(warm.seconds)) s) \(mib(warm.rss)), peak \(mib(peak)), last under load (t=\(Int(loadedSample?.seconds ?? 0)) s) \(mib(loadedSample?.rss ?? -1)), end (no clients) \(mib(end.rss)); limit \(mib(rssLimit))")
    report.append("server fds: baseline \(baseline.fds), peak \(samples.map(\.fds).max() ?? -1), end \(end.fds); limit \(fdLimit)")
    report.append("client process RSS at the end: \(mib(end.clientRSS)); server exit status \(exitStatus.map(String.init) ?? "killed")")
    let errors = control.errors
    if !errors.isEmpty {
        report.append("client errors: " + errors.sorted { $0.value > $1.value }.prefix(8).map { "\($0.value)× \($0.key)" }.joined(separator: "; "))
    }
    if !failures.samples.isEmpty { report.append("publish failures, first ones: " + failures.samples.joined(separator: " | ")) }
    if log.other > 0 { report.append("other server log lines: \(log.other), e.g. " + log.otherSamples.prefix(3).joined(separator: " | ")) }
    for sample in total.samples.prefix(10) { report.append("  " + sample) }
    report.append(problems.isEmpty ? "RESULT: PASS" : "RESULT: FAIL: " + problems.joined(separator: "; "))
    say(report.joined(separator: "\n"))
    return problems.isEmpty ? 0 : 1
}

do {
    let options = try Options(parsing: Array(CommandLine.arguments.dropFirst()))
    exit(await soak(options))
} catch {
    FileHandle.standardError.write(Data("Soak: \(error)\n".utf8))
    exit(2)
}
