import EventStreamKit
import Foundation
import Synchronization

/// One received `notification`: the server's sequence number (from the event ID) and the
/// publisher's (from the title). 32 bits each: a 10-minute soak sends well under 2^31.
struct Received: Sendable {
    let serverSequence: Int32
    let publisherSequence: Int32
}

/// Everything one user's client saw, across all its connections. Written by that user's
/// task only; read by the main task during the drain and at the end.
final class UserRecord: Sendable {
    struct State: Sendable {
        var received: [Received] = []
        /// A `gap` event arrived when `received.count` was this value (before that event).
        var gapsAt: [Int] = []
        var connections = 0
        var lastServerSequence = 0
        var malformed = 0
        var otherTypes = 0
    }

    let state = Mutex(State())

    /// `SOAK_INJECT_FAULTS=N` (checks the checker): every Nth notification is dropped and
    /// every Nth + N/2 is recorded twice, client side; the report must show both.
    static let faultPeriod = ProcessInfo.processInfo.environment["SOAK_INJECT_FAULTS"].flatMap(Int.init) ?? 0
    static let faultCounter = Atomic<Int>(0)

    func connectionOpened() {
        state.withLock { $0.connections += 1 }
    }

    func receive(_ event: MessageEvent) {
        switch event.type {
        case "notification":
            guard let serverSequence = serverSequence(of: event.lastEventID), let publisherSequence = publisherSequence(in: event.data) else {
                state.withLock { $0.malformed += 1 }
                return
            }
            var copies = 1
            if Self.faultPeriod > 0 {
                let count = Self.faultCounter.add(1, ordering: .relaxed).newValue
                if count % Self.faultPeriod == 0 { copies = 0 }
                if count % Self.faultPeriod == Self.faultPeriod / 2 { copies = 2 }
            }
            state.withLock { state in
                for _ in 0..<copies {
                    state.received.append(Received(serverSequence: Int32(serverSequence), publisherSequence: Int32(publisherSequence)))
                }
                state.lastServerSequence = max(state.lastServerSequence, serverSequence)
            }
        case "gap":
            state.withLock { $0.gapsAt.append($0.received.count) }
        default:
            state.withLock { $0.otherTypes += 1 }
        }
    }

    var lastServerSequence: Int { state.withLock { $0.lastServerSequence } }

    /// Done draining: has the final broadcast, or was told (by a `gap` after its last event)
    /// that it never will.
    func isSettled(final: Int) -> Bool {
        state.withLock { $0.lastServerSequence >= final || $0.gapsAt.last == $0.received.count }
    }
    var snapshot: State { state.withLock { $0 } }
}

/// `<epoch>-<n>` → n.
func serverSequence(of id: String) -> Int? {
    guard let dash = id.lastIndex(of: "-") else { return nil }
    return Int(id[id.index(after: dash)...])
}

/// The number in `"title":"b123"` or `"title":"u123"` (the demo encodes with sorted keys,
/// no spaces).
func publisherSequence(in data: String) -> Int? {
    guard let range = data.range(of: #""title":""#) else { return nil }
    var value = 0
    var digits = 0
    for byte in data[range.upperBound...].utf8.dropFirst() {
        guard byte >= 48, byte <= 57 else { break }
        value = value * 10 + Int(byte - 48)
        digits += 1
    }
    return digits > 0 ? value : nil
}

/// The phase every user loop follows, and the open sources, so that the drain can stop
/// the churn and the end can close everything at once.
final class Control: Sendable {
    enum Phase: Sendable { case churning, draining, stopped }

    private struct Open {
        let source: EventSource
        let closer: Task<Void, Never>?
    }

    private struct State {
        var phase = Phase.churning
        var open: [Int: Open] = [:]
        var errors: [String: Int] = [:]
        var connectionsOpened = 0
    }

    private let state = Mutex(State())

    var phase: Phase { state.withLock { $0.phase } }
    var openCount: Int { state.withLock { $0.open.count } }
    var connectionsOpened: Int { state.withLock { $0.connectionsOpened } }
    var errors: [String: Int] { state.withLock { $0.errors } }

    /// Registers a user's new source: while churning, a timer closes it after `readFor`
    /// seconds; while draining, it stays open until ``stop()``. `false` once stopped.
    func register(_ user: Int, _ source: EventSource, readFor: Double) -> Bool {
        state.withLock { state in
            guard state.phase != .stopped else { return false }
            var closer: Task<Void, Never>?
            if state.phase == .churning {
                closer = Task {
                    do {
                        try await Task.sleep(for: .seconds(readFor))
                        source.close()
                    } catch {}  // cancelled: the drain keeps this stream open
                }
            }
            state.open[user] = Open(source: source, closer: closer)
            state.connectionsOpened += 1
            return true
        }
    }

    func unregister(_ user: Int) {
        let open = state.withLock { $0.open.removeValue(forKey: user) }
        open?.closer?.cancel()
    }

    /// Stops the churn: open streams stay open, closed ones reconnect and stay.
    func drain() {
        let closers = state.withLock { state -> [Task<Void, Never>] in
            state.phase = .draining
            return state.open.values.compactMap(\.closer)
        }
        for closer in closers { closer.cancel() }
    }

    /// Closes every source; the user loops end.
    func stop() {
        let sources = state.withLock { state -> [EventSource] in
            state.phase = .stopped
            return state.open.values.map(\.source)
        }
        for source in sources { source.close() }
    }

    func note(_ error: any Error) {
        let key = String(describing: error).prefix(160)
        state.withLock { $0.errors[String(key), default: 0] += 1 }
    }
}

/// One user: connect with the last event ID it saw, read for a random time, close, pause
/// a random time, again, until the control says stop.
func runUser(index: Int, url: String, record: UserRecord, control: Control, startDelay: Double, readRange: ClosedRange<Double>, pauseRange: ClosedRange<Double>) async {
    try? await Task.sleep(for: .seconds(startDelay))
    var lastEventID = ""
    while control.phase != .stopped {
        let source: EventSource
        do {
            source = try EventSource(url: url, lastEventID: lastEventID)
        } catch {
            control.note(error)
            return
        }
        guard control.register(index, source, readFor: Double.random(in: readRange)) else { return }
        record.connectionOpened()
        do {
            for try await event in source {
                record.receive(event)
                lastEventID = event.lastEventID
            }
        } catch {
            control.note(error)
        }
        control.unregister(index)
        switch control.phase {
        case .stopped: return
        case .churning: try? await Task.sleep(for: .seconds(Double.random(in: pauseRange)))
        case .draining: try? await Task.sleep(for: .milliseconds(100))  // ended on its own during the drain: back at once
        }
    }
}
