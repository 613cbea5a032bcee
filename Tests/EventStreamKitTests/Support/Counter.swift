import Synchronization

/// A shared counter that closures can capture (an `Atomic` local cannot be).
final class Counter: Sendable {
    let value = Atomic<Int>(0)
    func increment() { value.add(1, ordering: .relaxed) }
    var count: Int { value.load(ordering: .relaxed) }
}
