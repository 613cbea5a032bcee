@testable import EventStreamKit
@testable import EventStreamHTTP
import Testing

private typealias Table = ConnectionTable<Int>

private func admitted(_ admission: Table.Admission) throws -> Table.Handle {
    guard case .admitted(let handle) = admission else { throw TableError.notAdmitted(admission) }
    return handle
}

private enum TableError: Error { case notAdmitted(Table.Admission) }

private let start = ContinuousClock.now

private func deadline(_ phase: Table.Phase, at milliseconds: Int, cancel: Int? = nil) -> Table.Deadline {
    Table.Deadline(phase: phase, instant: start + .milliseconds(milliseconds), cancel: cancel)
}

@Suite("Connection table: handles, deadlines, stop (no concurrency)")
struct ConnectionTableTests {
    @Test func aReusedDescriptorGetsANewGenerationAndTheOldHandleIsStale() throws {
        var table = Table(maxConnections: 10)
        let first = try admitted(table.admit(7))
        let result1 = table.release(first)
        #expect(result1)
        let second = try admitted(table.admit(7))
        #expect(second.fd == first.fd && second.generation != first.generation)
        #expect(!table.isCurrent(first))
        #expect(table.isCurrent(second))
        let result2 = table.release(first)
        #expect(!result2, "a stale handle releases nothing")
        let result3 = table.setDeadline(deadline(.head, at: 0), for: first)
        #expect(!result3, "nor sets a deadline")
        #expect(table.count == 1)
    }

    /// The race the sweep had: a deadline set by a connection that ended must never expire
    /// onto the new connection on the same descriptor.
    @Test func aDeadlineNeverOutlivesItsConnection() throws {
        var table = Table(maxConnections: 10)
        let slow = try admitted(table.admit(5))
        let result4 = table.setDeadline(deadline(.head, at: 10), for: slow)
        #expect(result4)
        let result5 = table.release(slow)
        #expect(result5)
        let innocent = try admitted(table.admit(5))
        let streaming = table.setDeadline(nil, for: innocent)  // streaming: no deadline
        #expect(streaming)
        let result6 = table.expire(now: start + .seconds(60)).isEmpty
        #expect(result6)
        #expect(table.isCurrent(innocent))
    }

    @Test func expiryShutsDownOnlyWhatPassedAndOnlyOnce() throws {
        var table = Table(maxConnections: 10)
        let head = try admitted(table.admit(3))
        let body = try admitted(table.admit(4))
        let write = try admitted(table.admit(5))
        let resolving = try admitted(table.admit(6))
        let later = try admitted(table.admit(8))
        table.setDeadline(deadline(.head, at: 10), for: head)
        table.setDeadline(deadline(.body, at: 20), for: body)
        table.setDeadline(deadline(.write, at: 30), for: write)
        table.setDeadline(deadline(.resolver, at: 30, cancel: 42), for: resolving)
        table.setDeadline(deadline(.head, at: 1000), for: later)

        let result7 = table.expire(now: start + .milliseconds(5)).isEmpty
        #expect(result7)
        var shut: [Table.Handle: Table.Phase] = [:]
        var cancelled: [Int] = []
        for expiry in table.expire(now: start + .milliseconds(30)) {
            switch expiry {
            case .shutDown(let handle, let phase): shut[handle] = phase
            case .cancel(let handle, let token):
                #expect(handle == resolving)
                cancelled.append(token)
            }
        }
        #expect(shut == [head: .head, body: .body, write: .write])
        #expect(cancelled == [42])
        let result8 = table.expire(now: start + .milliseconds(500)).isEmpty
        #expect(result8, "each deadline fires once")
        // A shut-down connection cannot arm a new deadline; its task ends and releases it.
        let result9 = table.setDeadline(deadline(.head, at: 2000), for: head)
        #expect(!result9)
        #expect(!table.isCurrent(head))
        let result10 = table.release(head)
        #expect(result10)
        // A cancelled resolver's connection stays open (it answers 503), and knows it expired.
        #expect(table.isCurrent(resolving))
        let result11 = table.clearDeadline(.resolver, for: resolving)
        #expect(!result11)
        #expect(table.deadlineCount == 1)
    }

    @Test func clearingADeadlineThatDidNotPassReportsIt() throws {
        var table = Table(maxConnections: 10)
        let handle = try admitted(table.admit(3))
        table.setDeadline(deadline(.resolver, at: 100, cancel: 1), for: handle)
        let result12 = table.clearDeadline(.write, for: handle)
        #expect(!result12, "only the phase named")
        let result13 = table.clearDeadline(.resolver, for: handle)
        #expect(result13)
        #expect(table.deadline(of: handle) == nil)
    }

    @Test func admissionStopsAtTheLimitAndWhenStopping() throws {
        var table = Table(maxConnections: 2)
        let a = try admitted(table.admit(3))
        _ = try admitted(table.admit(4))
        #expect(table.admit(5) == .full)
        table.release(a)
        _ = try admitted(table.admit(5))
        table.beginStopping()
        #expect(table.admit(6) == .stopping)
    }

    @Test func stopReturnsTheIdleConnectionsOnce() throws {
        var table = Table(maxConnections: 10)
        let idle = try admitted(table.admit(3))
        let busy = try admitted(table.admit(4))
        let streaming = try admitted(table.admit(5))
        table.setDeadline(deadline(.head, at: 10_000), for: idle, isIdle: true)
        table.setDeadline(deadline(.body, at: 10_000), for: busy)
        table.setDeadline(nil, for: streaming)
        let stopped = table.stop()
        #expect(stopped == [idle])
        let again = table.stop()
        #expect(again.isEmpty)
        #expect(table.isStopping)
        // The idle one's deadline can no longer shut down anything else later.
        let shut = table.expire(now: start + .seconds(20)).compactMap { expiry -> Table.Handle? in
            if case .shutDown(let handle, _) = expiry { handle } else { nil }
        }
        #expect(shut == [busy])
    }

    /// Churn across deadlines, as the sweep sees it: thousands of connections on a few
    /// recycled descriptors, some slow (deadline passes), some innocent (answered in time).
    /// No expiry may ever name an innocent connection.
    @Test(arguments: [1, 2, 3])
    func churnAcrossDeadlinesClosesNoInnocent(seed: UInt64) throws {
        var random = SeededGenerator(seed: seed)
        var table = Table(maxConnections: 64)
        var open: [Table.Handle: Bool] = [:]  // handle -> slow?
        var now = 0
        for _ in 0..<20_000 {
            now += Int.random(in: 0...3, using: &random)
            switch Int.random(in: 0..<4, using: &random) {
            case 0 where open.count < 32:
                let free = Set(Int32(3)..<Int32(40)).subtracting(open.keys.map(\.fd))
                guard let fd = free.randomElement(using: &random), case .admitted(let handle) = table.admit(fd) else { continue }
                let slow = Bool.random(using: &random)
                open[handle] = slow
                table.setDeadline(deadline(.head, at: now + (slow ? 5 : 1_000_000)), for: handle, isIdle: true)
            case 1:
                // An innocent connection finishes its request: no deadline while it streams.
                guard let (handle, _) = open.first(where: { !$0.value }) else { continue }
                table.setDeadline(nil, for: handle)
            case 2:
                guard let handle = open.keys.randomElement(using: &random) else { continue }
                let result14 = table.release(handle)
                #expect(result14)
                open[handle] = nil
            default:
                for expiry in table.expire(now: start + .milliseconds(now)) {
                    guard case .shutDown(let handle, _) = expiry else { continue }
                    #expect(open[handle] == true, "an innocent connection was shut down")
                }
            }
        }
    }
}
