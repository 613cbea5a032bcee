/// The verdict on one user, or on all of them summed.
struct Verdict {
    var users = 0
    var usersWithNothing = 0
    var usersWithGaps = 0
    /// Events expected from each user's first received event onward.
    var expected = 0
    var received = 0
    /// Expected, never received, and no `gap` event since the previous event received.
    var missing = 0
    /// Expected, never received, but a `gap` event said so.
    var missedInGaps = 0
    var duplicates = 0
    /// Received after a later event (and not a duplicate).
    var reordered = 0
    /// Received, but not addressed to this user (or its publish failed).
    var unexpected = 0
    /// The title's publisher sequence number is not the one published with this server ID.
    var mismatched = 0
    var gapEvents = 0
    var samples: [String] = []

    mutating func add(_ other: Verdict) {
        users += other.users
        usersWithNothing += other.usersWithNothing
        usersWithGaps += other.usersWithGaps
        expected += other.expected
        received += other.received
        missing += other.missing
        missedInGaps += other.missedInGaps
        duplicates += other.duplicates
        reordered += other.reordered
        unexpected += other.unexpected
        mismatched += other.mismatched
        gapEvents += other.gapEvents
        if samples.count < 20 { samples += other.samples.prefix(20 - samples.count) }
    }

    var failed: Bool { missing > 0 || duplicates > 0 || reordered > 0 || unexpected > 0 || mismatched > 0 }
}

/// Compares what a user received with what was published to it (both in the server's order):
/// from the first event it received onward, the two must be equal, except for the events a
/// `gap` event announced.
func verify(user: Int, received record: UserRecord.State, expected: [Published]) -> Verdict {
    var verdict = Verdict(users: 1)
    verdict.received = record.received.count
    verdict.gapEvents = record.gapsAt.count
    if !record.gapsAt.isEmpty { verdict.usersWithGaps = 1 }
    guard !record.received.isEmpty else {
        verdict.usersWithNothing = 1
        return verdict
    }
    func index(of serverSequence: Int) -> Int? {
        var low = 0, high = expected.count
        while low < high {
            let mid = (low + high) / 2
            if expected[mid].serverSequence < serverSequence { low = mid + 1 } else { high = mid }
        }
        return low < expected.count && expected[low].serverSequence == serverSequence ? low : nil
    }
    func sample(_ text: String) {
        if verdict.samples.count < 5 { verdict.samples.append("\(userName(user)): \(text)") }
    }

    var seen = Set<Int>()
    var missingSet = Set<Int>()
    var gapSet = Set<Int>()
    var gapIndex = 0
    var next: Int?  // the index in `expected` the next event should have
    for (position, event) in record.received.enumerated() {
        var gapBefore = false
        while gapIndex < record.gapsAt.count, record.gapsAt[gapIndex] <= position {
            gapBefore = true
            gapIndex += 1
        }
        let serverSequence = Int(event.serverSequence)
        guard seen.insert(serverSequence).inserted else {
            verdict.duplicates += 1
            sample("duplicate server seq \(serverSequence) (publisher seq \(event.publisherSequence)) at received #\(position)")
            continue
        }
        guard let at = index(of: serverSequence) else {
            verdict.unexpected += 1
            sample("unexpected server seq \(serverSequence) (publisher seq \(event.publisherSequence))")
            continue
        }
        if expected[at].publisherSequence != Int(event.publisherSequence) {
            verdict.mismatched += 1
            sample("server seq \(serverSequence) carried publisher seq \(event.publisherSequence), published as \(expected[at].publisherSequence)")
        }
        guard let expectedAt = next else {
            next = at + 1  // the first event: the user's history starts here
            verdict.expected = expected.count - at
            continue
        }
        if at == expectedAt {
            next = at + 1
        } else if at > expectedAt {
            let skipped = expected[expectedAt..<at].map(\.serverSequence)
            if gapBefore {
                gapSet.formUnion(skipped)
            } else {
                missingSet.formUnion(skipped)
                sample("missing \(skipped.count) event(s), server seq \(skipped.first!)…\(skipped.last!), before server seq \(serverSequence) at received #\(position)")
            }
            next = at + 1
        } else {
            // Earlier than the one expected and not seen: it was counted missing, it came late.
            verdict.reordered += 1
            missingSet.remove(serverSequence)
            gapSet.remove(serverSequence)
            sample("server seq \(serverSequence) arrived after later events, at received #\(position)")
        }
    }
    if let next, next < expected.count {
        let tail = expected[next...].map(\.serverSequence)
        if gapIndex < record.gapsAt.count {
            gapSet.formUnion(tail)
        } else {
            missingSet.formUnion(tail)
            sample("missing the last \(tail.count) event(s), from server seq \(tail.first!)")
        }
    }
    verdict.missing = missingSet.count
    verdict.missedInGaps = gapSet.count
    return verdict
}
