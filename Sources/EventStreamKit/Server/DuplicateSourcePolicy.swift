/// What the hub does when a source (a user, say) connects while it already has streams.
public struct DuplicateSourcePolicy: Hashable, Sendable, CustomStringConvertible {
    enum Kind: Hashable, Sendable {
        case allowMultiple
        case limit(Int)
        case refuseNew
        case replaceExisting
    }

    let kind: Kind

    /// Every connection gets its own stream: a user with three tabs gets three. The default.
    public static let allowMultiple = DuplicateSourcePolicy(kind: .allowMultiple)

    /// At most `count` streams per source; a new one evicts the oldest
    /// (``DisconnectReason/evicted``).
    public static func limit(_ count: Int) -> DuplicateSourcePolicy {
        precondition(count > 0, "the limit must be at least 1")
        return DuplicateSourcePolicy(kind: .limit(count))
    }

    /// Source IDs are unique client IDs: a second connection is refused with
    /// ``EventServerError/Code/duplicateSource`` (seed 002).
    public static let refuseNew = DuplicateSourcePolicy(kind: .refuseNew)

    /// The new connection replaces the existing ones (``DisconnectReason/replaced``).
    public static let replaceExisting = DuplicateSourcePolicy(kind: .replaceExisting)

    public var description: String { String(describing: kind) }
}
