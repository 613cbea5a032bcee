import Dispatch
import EventStreamKit
import EventStreamHTTP
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct ServeOptions {
    struct UsageError: Error, CustomStringConvertible {
        let description: String
    }

    var host = "127.0.0.1"
    var port: UInt16 = 8080
    /// Set by `--bench-rate` (0 included: W3 measures idle streams): bench mode.
    var benchRate: Double?
    var benchSize = 100
    /// Seconds between news headlines; 0 turns the ticker off.
    var newsInterval = 5.0
    /// Events kept for replay.
    var backlog = 256
    /// Sign-ins a second for everyone together (after a burst of 100).
    var signInRate = Accounts.signInRate
    /// Notifications a second per signed-in user (after a burst of 20).
    var notifyRate = Accounts.notifyRate
    /// The HTTP server's head and write timeouts, in seconds (defaults: the library's).
    var headTimeout: Duration?
    var writeTimeout: Duration?
    /// Host names answered besides the bound address, `localhost`, `127.0.0.1` and `[::1]`
    /// (`--allowed-host`, repeatable): the demo refuses others (421) against DNS rebinding.
    var extraAllowedHosts: [String] = []
    /// Reverse proxies whose `X-Forwarded-For` names the client (`--trusted-proxy`,
    /// repeatable): nginx in front, say (Docs/Deployment.md).
    var trustedProxies: [String] = []
    /// Set by `--redis`: this process is one node of a cluster that shares its events, its
    /// replay window and its sign-in tokens through that Redis.
    var redisURL: String?
    /// The node's name, shown on the page and in `/stats` (`--node`; default: host name and
    /// port, or host name and process ID when the port is chosen by the system).
    var nodeName: String?
    /// The cluster's name: the prefix of its keys in Redis (`--cluster-name`).
    var clusterName = "eventstreamdemo"
    /// About how many events the cluster's log keeps for replay (`--log-length`).
    var logLength = 10_000
    /// What happens to a client that falls a queue behind (`--overflow-policy`): its oldest
    /// events are dropped (the default), or it is disconnected, so that it reconnects and
    /// replays what it missed (exact, as long as the replay window holds it).
    var overflowPolicy = OverflowPolicy.dropOldest
    /// Events a client's queue holds before the overflow policy applies (`--queue-capacity`).
    var queueCapacity = 256

    /// The `Host` names the demo answers for.
    var allowedHosts: [String] {
        let bound = host.contains(":") ? "[\(host)]" : host
        return [bound, "localhost", "127.0.0.1", "[::1]"] + extraAllowedHosts
    }

    var isBenchMode: Bool { benchRate != nil }

    /// A name of 1 to `maxLength` ASCII letters, digits, `.`, `:`, `_` or `-`: safe in a Redis
    /// key, a log line, a page and a Prometheus label.
    static func isValidName(_ name: String, maxLength: Int) -> Bool {
        (1...maxLength).contains(name.utf8.count) && name.utf8.allSatisfy { byte in
            switch byte {
            case 48...58, 65...90, 97...122, 45, 46, 95: true
            default: false
            }
        }
    }

    static let usage = """
        usage: EventStreamDemo [serve] [--host H] [--port P] [--news-interval S] [--backlog N] [--bench-rate R] [--bench-size S]
                                       [--signin-rate R] [--notify-rate R] [--head-timeout S] [--write-timeout S] [--allowed-host H]...
                                       [--trusted-proxy ADDR]... [--overflow-policy drop-oldest|disconnect] [--queue-capacity N]
                                       [--redis redis://[:password@]host[:port][/db] [--node NAME] [--cluster-name NAME] [--log-length N]]
          Serves the demo page, its JSON API and per-user event streams (the default command).
          With --redis, joins the cluster of every demo started with the same Redis and cluster name:
          a notification sent on any node reaches its users on every node, a stream resumes on any
          node, and a sign-in token works on every node.
        """

    init(parsing arguments: [String]) throws {
        var remaining = arguments[...]
        while let flag = remaining.popFirst() {
            guard let value = remaining.popFirst() else { throw UsageError(description: "\(flag) needs a value") }
            switch flag {
            case "--host": host = value
            case "--port":
                guard let port = UInt16(value) else { throw UsageError(description: "--port takes 0...65535, not \(value)") }
                self.port = port
            case "--bench-rate":
                guard let rate = Double(value), rate >= 0 else { throw UsageError(description: "--bench-rate takes events per second, not \(value)") }
                benchRate = rate
            case "--news-interval":
                guard let seconds = Double(value), seconds >= 0 else { throw UsageError(description: "--news-interval takes seconds, not \(value)") }
                newsInterval = seconds
            case "--backlog":
                guard let count = Int(value), count >= 1 else { throw UsageError(description: "--backlog takes a positive event count, not \(value)") }
                backlog = count
            case "--allowed-host":
                guard !value.isEmpty, HTTPServer.Configuration.isValidAllowedHost(value) else { throw UsageError(description: "--allowed-host takes a host name, with or without a port, not \(value)") }
                extraAllowedHosts.append(value)
            case "--trusted-proxy":
                guard HTTPServer.Configuration.isValidTrustedProxy(value) else { throw UsageError(description: "--trusted-proxy takes an IPv4 or IPv6 address, not \(value)") }
                trustedProxies.append(value)
            case "--signin-rate":
                guard let rate = Double(value), rate > 0 else { throw UsageError(description: "--signin-rate takes sign-ins per second, not \(value)") }
                signInRate = rate
            case "--notify-rate":
                guard let rate = Double(value), rate > 0 else { throw UsageError(description: "--notify-rate takes notifications per second, not \(value)") }
                notifyRate = rate
            case "--head-timeout", "--write-timeout":
                guard let seconds = Double(value), seconds > 0, seconds <= 86_400 else { throw UsageError(description: "\(flag) takes seconds, not \(value)") }
                if flag == "--head-timeout" { headTimeout = .seconds(seconds) } else { writeTimeout = .seconds(seconds) }
            case "--redis":
                guard (try? RedisEndpoint(url: value)) != nil else { throw UsageError(description: "--redis takes redis://[:password@]host[:port][/db], not \(value)") }
                redisURL = value
            case "--node":
                guard Self.isValidName(value, maxLength: 64) else { throw UsageError(description: "--node takes 1-64 letters, digits, '.', ':', '_' or '-', not \(value)") }
                nodeName = value
            case "--cluster-name":
                guard Self.isValidName(value, maxLength: 64) else { throw UsageError(description: "--cluster-name takes 1-64 letters, digits, '.', ':', '_' or '-', not \(value)") }
                clusterName = value
            case "--log-length":
                guard let count = Int(value), (10...10_000_000).contains(count) else { throw UsageError(description: "--log-length takes an event count from 10 to 10000000, not \(value)") }
                logLength = count
            case "--overflow-policy":
                switch value {
                case "drop-oldest": overflowPolicy = .dropOldest
                case "disconnect": overflowPolicy = .disconnect
                default: throw UsageError(description: "--overflow-policy takes drop-oldest or disconnect, not \(value)")
                }
            case "--queue-capacity":
                guard let count = Int(value), (1...100_000).contains(count) else { throw UsageError(description: "--queue-capacity takes an event count from 1 to 100000, not \(value)") }
                queueCapacity = count
            case "--bench-size":
                guard let size = Int(value), size >= 0 else { throw UsageError(description: "--bench-size takes a byte count, not \(value)") }
                benchSize = size
            default:
                throw UsageError(description: "unknown option \(flag)")
            }
        }
    }
}

/// Serves until SIGTERM or SIGINT, off the main actor.
nonisolated func serve(_ options: ServeOptions) async {
    // Signals first, before the listener exists: a SIGTERM that arrives once "serving" is
    // printed must stop the server, and the sources' descriptors are taken while any are free.
    // A server must outlive the reader of its output: SIGPIPE would end it at the first write
    // to a closed pipe (the library's own log writer and sockets already never raise it).
    signal(SIGPIPE, SIG_IGN)
    let (stopRequests, requestStop) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    let signals = [SIGTERM, SIGINT].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler { requestStop.yield() }
        source.resume()
        return source
    }
    let app: DemoApp
    if let redisURL = options.redisURL {
        let node = options.nodeName ?? defaultNodeName(port: options.port)
        do {
            app = try DemoApp(
                benchMode: options.isBenchMode, backlog: options.backlog, signInRate: options.signInRate, notifyRate: options.notifyRate,
                overflowPolicy: options.overflowPolicy, queueCapacity: options.queueCapacity, cluster: .init(redisURL: redisURL, name: options.clusterName, node: node, logLength: options.logLength)
            )
        } catch {
            printError("EventStreamDemo: \(error)")
            exitProcess(2)
        }
    } else {
        app = DemoApp(benchMode: options.isBenchMode, backlog: options.backlog, signInRate: options.signInRate, notifyRate: options.notifyRate, overflowPolicy: options.overflowPolicy, queueCapacity: options.queueCapacity)
    }
    let hub = app.hub
    let server: HTTPServer
    do {
        var configuration = HTTPServer.Configuration(host: options.host, port: options.port)
        configuration.maxConnections = 19_000
        // The largest request the demo takes is a notification: 2,000 bytes of body and 200
        // of title, plus JSON and up to 1,000 user names.
        configuration.maxBodySize = 64 * 1024
        configuration.allowedHosts = options.allowedHosts
        configuration.trustedProxies = options.trustedProxies
        if let timeout = options.headTimeout { configuration.headTimeout = timeout }
        if let timeout = options.writeTimeout { configuration.writeTimeout = timeout }
        configuration.observer = app.metrics
        server = try HTTPServer(router: app.router, configuration: configuration)
    } catch {
        printError("EventStreamDemo: cannot listen on \(options.host):\(options.port): \(error)")
        exitProcess(1)
    }
    let host = options.host.contains(":") ? "[\(options.host)]" : options.host
    log("EventStreamDemo serving http://\(host):\(server.port)/ (Ctrl-C stops)")
    if let node = app.node, let redis = options.redisURL.flatMap({ try? RedisEndpoint(url: $0) }) {
        log("node \(node) of cluster \(options.clusterName), through \(redis)")
    }

    await withDiscardingTaskGroup { group in
        group.addTask {
            for await _ in stopRequests {
                server.shutdown()
                return
            }
        }
        group.addTask { await hub.run() }
        if let rate = options.benchRate {
            // Bench mode logs nothing per connection (ten thousand lines would measure the
            // terminal), only what happens to the cluster.
            if options.redisURL != nil { group.addTask { await app.logConnections(perConnection: false) } }
            if rate > 0 {
                group.addTask { await benchTicker(hub: hub, rate: rate, size: options.benchSize) }
            }
        } else {
            group.addTask { await app.logConnections() }
            if options.newsInterval > 0 {
                group.addTask { await app.newsTicker(every: .seconds(options.newsInterval)) }
            }
        }
        await server.run()
        group.cancelAll()
    }
    signals.forEach { $0.cancel() }
    log("EventStreamDemo stopped")
}

/// Broadcasts `rate` events a second: wakes every max(1/rate, 1 ms) and sends every event due
/// by then as one burst. Data: `<unix time in ns> <sequence> <padding to size bytes>`.
nonisolated func benchTicker(hub: EventServer<String>, rate: Double, size: Int) async {
    let tick = try! EventType<String>("tick", marshal: .text)
    let clock = ContinuousClock()
    let start = clock.now
    let period = max(1 / rate, 0.001)
    var published = 0
    while !Task.isCancelled {
        let elapsed = clock.now - start
        let (seconds, attoseconds) = elapsed.components
        let due = Int(rate * (Double(seconds) + Double(attoseconds) / 1e18)) - published
        if due > 0 {
            var payloads: [String] = []
            payloads.reserveCapacity(due)
            for _ in 0..<due {
                published += 1
                payloads.append(benchPayload(sequence: published, size: size))
            }
            _ = try? await hub.send(contentsOf: payloads, as: tick)
        }
        try? await Task.sleep(for: .seconds(period))
    }
}

func benchPayload(sequence: Int, size: Int) -> String {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    let prefix = "\(Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)) \(sequence) "
    return prefix.utf8.count >= size ? prefix : prefix + String(repeating: "x", count: size - prefix.utf8.count)
}

/// The host's name and the port, or the process ID when the system picks the port (the
/// name must be known before the port is).
func defaultNodeName(port: UInt16) -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    let host = gethostname(&buffer, buffer.count - 1) == 0 ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "node"
    let name = String(host.unicodeScalars.filter { ServeOptions.isValidName(String($0), maxLength: 1) }.prefix(40).map(Character.init))
    return (name.isEmpty ? "node" : name) + (port == 0 ? "-\(getpid())" : ":\(port)")
}

func printError(_ message: String) {
    _ = Array((message + "\n").utf8).withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

func exitProcess(_ code: Int32) -> Never {
    exit(code)
}
