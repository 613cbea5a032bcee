@testable import EventStreamKit
import Synchronization
import Testing

@Suite("DeadlineBook: the pure state of the Redis commands' one timer")
struct DeadlineBookTests {
    typealias Book = DeadlineBook<Int, String>

    private func expired(_ action: Book.WakeAction) -> (due: [String], next: Int?)? {
        if case .expire(let due, let next) = action { return (due.sorted(), next) }
        return nil
    }

    @Test("only a deadline earlier than the timer's wake sets a timer; a replaced timer stops")
    func timers() {
        var book = Book()
        let ten = book.add(10, action: "ten")
        #expect(ten.action == .setTimer(10, generation: 1))
        let twenty = book.add(20, action: "twenty").action
        #expect(twenty == .none, "the timer wakes at 10, before 20")
        let tenAgain = book.add(10, action: "ten again").action
        #expect(tenAgain == .none)
        let five = book.add(5, action: "five")
        #expect(five.action == .setTimer(5, generation: 2))
        let oldTimer = book.timerFired(generation: 1, now: 10)
        if case .stop = oldTimer {} else { Issue.record("the timer set for 10 was replaced") }
        #expect(book.count == 4, "a replaced timer expires nothing")
    }

    @Test("a wake expires what is due, in any order, and sleeps until the earliest left; an empty book stops the timer")
    func wakes() throws {
        var book = Book()
        _ = book.add(10, action: "ten")
        let twenty = book.add(20, action: "twenty")
        _ = book.add(10, action: "ten again")
        let thirty = book.add(30, action: "thirty")
        let firstWake = book.timerFired(generation: 1, now: 12)
        let first = try #require(expired(firstWake))
        #expect(first.due == ["ten", "ten again"])
        #expect(first.next == 20)
        #expect(book.wake == 20)
        let removed = book.remove(twenty.ticket)
        #expect(removed, "removed before it was due")
        let secondWake = book.timerFired(generation: 1, now: 20)
        let second = try #require(expired(secondWake))
        #expect(second.due.isEmpty, "what was removed does not run")
        #expect(second.next == 30)
        let thirdWake = book.timerFired(generation: 1, now: 31)
        let third = try #require(expired(thirdWake))
        #expect(third.due == ["thirty"])
        #expect(third.next == nil)
        #expect(book.wake == nil)
        let removedLate = book.remove(thirty.ticket)
        #expect(!removedLate, "it came: its action ran")
        #expect(book.count == 0)
        let forty = book.add(40, action: "forty").action
        #expect(forty == .setTimer(40, generation: 2), "no timer runs: a new one is set")
    }
}

@Suite("DeadlineSweeper")
struct DeadlineSweeperTests {
    @Test("a thousand commands that answer in time start one timer and leave nothing behind")
    func commandsInTime() {
        let sweeper = DeadlineSweeper(clock: ContinuousClock())
        let fired = Atomic<Int>(0)
        let deadline = ContinuousClock.now + .seconds(60)
        for _ in 0..<1_000 {
            let ticket = sweeper.add(deadline) { fired.add(1, ordering: .relaxed) }
            #expect(sweeper.remove(ticket))
        }
        #expect(sweeper.timersStartedCount == 1)
        #expect(sweeper.pendingCount == 0)
        #expect(fired.load(ordering: .relaxed) == 0)
    }

    @Test("a deadline that comes runs its action once, and removing it afterwards says so")
    func deadlineComes() async throws {
        let sweeper = DeadlineSweeper(clock: ContinuousClock())
        let count = Atomic<Int>(0)
        let (ran, ranContinuation) = AsyncStream.makeStream(of: Void.self)
        let late = sweeper.add(.now + .seconds(60)) {}
        let ticket = sweeper.add(.now + .milliseconds(20)) {
            count.add(1, ordering: .relaxed)
            ranContinuation.yield()
        }
        try await withDeadline(.seconds(10), "the 20 ms deadline") {
            for await _ in ran { return }
        }
        #expect(!sweeper.remove(ticket))
        #expect(count.load(ordering: .relaxed) == 1)
        #expect(sweeper.remove(late), "a later deadline is still pending")
        #expect(sweeper.timersStartedCount == 2, "the earlier deadline set a timer of its own")
    }
}
