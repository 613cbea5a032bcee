import Foundation
import Synchronization

/// One published event: the server's sequence number (the `<n>` of its `<epoch>-<n>` ID) and
/// the publisher's own sequence number, carried in the title.
struct Published: Sendable {
    let serverSequence: Int
    let publisherSequence: Int
}

/// What the publisher sent, to whom: broadcasts once for everyone, per-user events per user.
/// Recorded after the server answered 202 with the event's ID, so the order that matters
/// (the server's) is known whatever order concurrent publishers finished in.
final class Ledger: Sendable {
    private struct State {
        var broadcasts: [Published] = []
        var perUser: [[Published]]
        var failures = 0
        var failureSamples: [String] = []
        var epoch: String?
        var epochMismatches = 0
    }

    private let state: Mutex<State>

    init(users: Int) {
        state = Mutex(State(perUser: Array(repeating: [], count: users)))
    }

    func recordBroadcast(_ event: Published) {
        state.withLock { $0.broadcasts.append(event) }
    }

    func record(_ event: Published, for user: Int) {
        state.withLock { $0.perUser[user].append(event) }
    }

    func recordFailure(_ message: String) {
        state.withLock { state in
            state.failures += 1
            if state.failureSamples.count < 10 { state.failureSamples.append(message) }
        }
    }

    /// Splits `<epoch>-<n>`; the epoch must be the same for every event of the run.
    func serverSequence(ofID id: String) -> Int? {
        guard let dash = id.lastIndex(of: "-"), let sequence = Int(id[id.index(after: dash)...]) else { return nil }
        let epoch = String(id[..<dash])
        state.withLock { state in
            if state.epoch == nil { state.epoch = epoch } else if state.epoch != epoch { state.epochMismatches += 1 }
        }
        return sequence
    }

    var broadcasts: [Published] { state.withLock { $0.broadcasts.sorted { $0.serverSequence < $1.serverSequence } } }
    var failures: (count: Int, samples: [String]) { state.withLock { ($0.failures, $0.failureSamples) } }
    var epochMismatches: Int { state.withLock { $0.epochMismatches } }
    var perUserCount: Int { state.withLock { $0.perUser.reduce(0) { $0 + $1.count } } }
    var broadcastCount: Int { state.withLock { $0.broadcasts.count } }

    /// Everything addressed to `user`, in the server's order.
    func expected(for user: Int, broadcasts: [Published]) -> [Published] {
        let own = state.withLock { $0.perUser[user] }.sorted { $0.serverSequence < $1.serverSequence }
        var merged: [Published] = []
        merged.reserveCapacity(own.count + broadcasts.count)
        var i = 0, j = 0
        while i < own.count || j < broadcasts.count {
            if j == broadcasts.count || (i < own.count && own[i].serverSequence < broadcasts[j].serverSequence) {
                merged.append(own[i]); i += 1
            } else {
                merged.append(broadcasts[j]); j += 1
            }
        }
        return merged
    }
}

/// The publisher: `broadcastRate` broadcasts a second on one thread, `perUserRate`
/// single-user notifications a second spread over `workers` threads, each on its own
/// keep-alive connection. Every event carries the next global publisher sequence number
/// in its title (`b<seq>` or `u<seq>`). It sends as one signed-in user, with that user's
/// token (the demo's `/notify` takes no anonymous sender).
final class Publisher: Sendable {
    let port: UInt16
    let token: String
    let users: Int
    let ledger: Ledger
    let broadcastRate: Double
    let perUserRate: Double
    let workers: Int
    private let sequence = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private let group = DispatchGroup()
    /// Requests that took longer than their slot: how far the publisher fell behind.
    private let lateResets = Atomic<Int>(0)

    init(port: UInt16, token: String, users: Int, ledger: Ledger, broadcastRate: Double, perUserRate: Double, workers: Int = 4) {
        self.port = port
        self.token = token
        self.users = users
        self.ledger = ledger
        self.broadcastRate = broadcastRate
        self.perUserRate = perUserRate
        self.workers = workers
    }

    var published: Int { sequence.load(ordering: .relaxed) }
    var fellBehind: Int { lateResets.load(ordering: .relaxed) }

    func start() {
        spawn(rate: broadcastRate) { [self] http in self.publishBroadcast(http) }
        for _ in 0..<workers {
            spawn(rate: perUserRate / Double(workers)) { [self] http in
                self.publish(to: Int.random(in: 0..<self.users), http)
            }
        }
    }

    /// Stops every thread after its current request and waits for them.
    func stop() {
        stopping.store(true, ordering: .relaxed)
        group.wait()
    }

    private func spawn(rate: Double, _ body: @escaping @Sendable (MiniHTTP) -> Void) {
        guard rate > 0 else { return }
        group.enter()
        let thread = Thread { [self] in
            let http = MiniHTTP(port: port)
            let period = 1 / rate
            var next = Date().timeIntervalSinceReferenceDate + Double.random(in: 0..<period)
            while !stopping.load(ordering: .relaxed) {
                let now = Date().timeIntervalSinceReferenceDate
                if next > now { usleep(UInt32((next - now) * 1_000_000)) }
                if stopping.load(ordering: .relaxed) { break }
                body(http)
                next += period
                let after = Date().timeIntervalSinceReferenceDate
                if after - next > 1 {  // more than a second behind: do not burst to catch up
                    lateResets.add(1, ordering: .relaxed)
                    next = after
                }
            }
            http.close()
            group.leave()
        }
        thread.start()
    }

    /// Sends one last broadcast, after `stop()`, and returns its server sequence number:
    /// every user must receive it, so a user that has it has received everything.
    func publishFinal() -> Int? {
        let http = MiniHTTP(port: port)
        defer { http.close() }
        return publishBroadcast(http)
    }

    @discardableResult
    private func publishBroadcast(_ http: MiniHTTP) -> Int? {
        let seq = sequence.add(1, ordering: .relaxed).newValue
        guard let serverSequence = post(#"{"title":"b\#(seq)","body":"soak broadcast"}"#, http) else { return nil }
        ledger.recordBroadcast(Published(serverSequence: serverSequence, publisherSequence: seq))
        return serverSequence
    }

    private func publish(to user: Int, _ http: MiniHTTP) {
        let seq = sequence.add(1, ordering: .relaxed).newValue
        guard let serverSequence = post(#"{"to":["\#(userName(user))"],"title":"u\#(seq)","body":"soak notification"}"#, http) else { return }
        ledger.record(Published(serverSequence: serverSequence, publisherSequence: seq), for: user)
    }

    private func post(_ body: String, _ http: MiniHTTP) -> Int? {
        do {
            let response = try http.request("POST", "/notify", json: body, token: token)
            guard response.status == 202,
                  let object = try? JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any],
                  let id = object["id"] as? String, let serverSequence = ledger.serverSequence(ofID: id)
            else {
                ledger.recordFailure("\(response.status) \(response.body.prefix(200))")
                return nil
            }
            return serverSequence
        } catch {
            ledger.recordFailure("\(error)")
            return nil
        }
    }
}

/// The soak's user names: `soak0`, `soak1`, …
func userName(_ index: Int) -> String { "soak\(index)" }
