/// Identifies one client stream for the life of a hub; never reused.
public struct ConnectionID: Hashable, Sendable, Comparable, CustomStringConvertible {
    let value: UInt64

    public static func < (lhs: ConnectionID, rhs: ConnectionID) -> Bool { lhs.value < rhs.value }
    public var description: String { "#\(value)" }
}
