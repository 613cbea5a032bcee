/// One event as the cluster's log holds it: who it is for and what it says, without its ID
/// (the log's epoch and sequence make the ID, on every node alike) and without its encoded
/// frame (each node encodes it once, for its own connections).
///
/// Most records are events; a control record (``Kind/close``) tells every node to act on its
/// own connections and is never delivered to a client.
///
/// A small length-prefixed binary format. Version 1 is an event: the version byte, then the
/// body (audience, name, data, retry, comments). Version 2 is the version byte, a kind byte,
/// then the same body. Events are still written as version 1, so that a node of an older
/// version reads them during a rolling upgrade (it counts a version-2 record as malformed and
/// skips it). Decoding checks every length against what is left, so a record written by
/// anyone with access to Redis cannot make a node read out of bounds or allocate more than
/// the record's own size.
struct ClusterRecord: Equatable, Sendable {
    /// What a record is.
    enum Kind: UInt8, Equatable, Sendable {
        /// An event for the audience's connections.
        case event = 0
        /// Every node closes its connections of the audience's sources.
        case close = 1
    }

    enum Audience: Equatable, Sendable {
        case everyone
        case only([String])
        case except([String])
        case channel(String)
        case everyChannel
    }

    var kind = Kind.event
    var audience: Audience
    var name: String?
    var data: [UInt8]?
    var retry: Duration?
    var comments: [String] = []

    private static let eventVersion: UInt8 = 1
    private static let kindVersion: UInt8 = 2

    /// The record of `recipients`, their sources encoded with `encode`.
    init<SourceID>(kind: Kind = .event, recipients: Recipients<SourceID>, name: String?, data: [UInt8]?, retry: Duration? = nil, comments: [String] = [], encode: (SourceID) -> String) {
        self.kind = kind
        switch recipients.kind {
        case .everyone: audience = .everyone
        case .only(let sources): audience = .only(sources.map(encode).sorted())
        case .except(let sources): audience = .except(sources.map(encode).sorted())
        case .channel(let channel): audience = .channel(channel)
        case .everyChannel: audience = .everyChannel
        }
        self.name = name
        self.data = data
        self.retry = retry
        self.comments = comments
    }

    init(kind: Kind = .event, audience: Audience, name: String?, data: [UInt8]?, retry: Duration? = nil, comments: [String] = []) {
        self.kind = kind
        self.audience = audience
        self.name = name
        self.data = data
        self.retry = retry
        self.comments = comments
    }

    /// The recipients, their sources decoded with `decode`; a source it cannot decode is left
    /// out (it cannot be connected to this node).
    func recipients<SourceID>(decode: (String) -> SourceID?) -> Recipients<SourceID> {
        switch audience {
        case .everyone: .everyone
        case .only(let sources): .only(Set(sources.compactMap(decode)))
        case .except(let sources): .everyone(except: Set(sources.compactMap(decode)))
        case .channel(let channel): .channel(channel)
        case .everyChannel: .everyChannel
        }
    }

    var bytes: [UInt8] {
        var out: [UInt8] = kind == .event ? [Self.eventVersion] : [Self.kindVersion, kind.rawValue]
        switch audience {
        case .everyone: out.append(0)
        case .only(let sources):
            out.append(1)
            Self.put(UInt32(sources.count), into: &out)
            for source in sources { Self.put(Array(source.utf8), into: &out) }
        case .except(let sources):
            out.append(2)
            Self.put(UInt32(sources.count), into: &out)
            for source in sources { Self.put(Array(source.utf8), into: &out) }
        case .channel(let channel):
            out.append(3)
            Self.put(Array(channel.utf8), into: &out)
        case .everyChannel: out.append(4)
        }
        Self.putOptional(name.map { Array($0.utf8) }, into: &out)
        Self.putOptional(data, into: &out)
        if let retry {
            out.append(1)
            Self.put(UInt64(clamping: retry.components.seconds) &* 1000 &+ UInt64(retry.components.attoseconds / 1_000_000_000_000_000), into: &out)
        } else {
            out.append(0)
        }
        Self.put(UInt32(comments.count), into: &out)
        for comment in comments { Self.put(Array(comment.utf8), into: &out) }
        return out
    }

    /// Reads a record.
    ///
    /// - Throws: ``RedisError`` (``RedisError/Code/connectionFailed``) for bytes that are
    ///   not a version-1 or version-2 record of a known kind.
    init(bytes: [UInt8]) throws(RedisError) {
        var reader = Reader(bytes: bytes[...])
        switch try reader.byte() {
        case Self.eventVersion: kind = .event
        case Self.kindVersion:
            guard let known = Kind(rawValue: try reader.byte()) else { throw Reader.malformed }
            kind = known
        default: throw Reader.malformed
        }
        switch try reader.byte() {
        case 0: audience = .everyone
        case 1: audience = .only(try reader.strings())
        case 2: audience = .except(try reader.strings())
        case 3: audience = .channel(try reader.string())
        case 4: audience = .everyChannel
        default: throw Reader.malformed
        }
        name = try reader.optional().map { String(decoding: $0, as: UTF8.self) }
        data = try reader.optional()
        if try reader.byte() == 1 {
            retry = .milliseconds(Int64(clamping: try reader.uint64()))
        }
        comments = try reader.strings()
        guard reader.bytes.isEmpty else { throw Reader.malformed }
    }

    private static func put(_ value: UInt32, into out: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { out.append(contentsOf: $0) }
    }

    private static func put(_ value: UInt64, into out: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { out.append(contentsOf: $0) }
    }

    private static func put(_ bytes: [UInt8], into out: inout [UInt8]) {
        put(UInt32(bytes.count), into: &out)
        out.append(contentsOf: bytes)
    }

    private static func putOptional(_ bytes: [UInt8]?, into out: inout [UInt8]) {
        guard let bytes else { return out.append(0) }
        out.append(1)
        put(bytes, into: &out)
    }

    private struct Reader {
        static let malformed = RedisError(.connectionFailed, "a record in the cluster's log is malformed")
        var bytes: ArraySlice<UInt8>

        mutating func byte() throws(RedisError) -> UInt8 {
            guard let first = bytes.popFirst() else { throw Self.malformed }
            return first
        }

        mutating func take(_ count: Int) throws(RedisError) -> ArraySlice<UInt8> {
            guard count >= 0, count <= bytes.count else { throw Self.malformed }
            defer { bytes = bytes.dropFirst(count) }
            return bytes.prefix(count)
        }

        mutating func uint32() throws(RedisError) -> UInt32 {
            try take(4).reduce(0) { $0 << 8 | UInt32($1) }
        }

        mutating func uint64() throws(RedisError) -> UInt64 {
            try take(8).reduce(0) { $0 << 8 | UInt64($1) }
        }

        mutating func data() throws(RedisError) -> [UInt8] {
            Array(try take(Int(try uint32())))
        }

        mutating func string() throws(RedisError) -> String {
            String(decoding: try data(), as: UTF8.self)
        }

        mutating func strings() throws(RedisError) -> [String] {
            let count = Int(try uint32())
            // Each string takes at least its 4-byte length: a count beyond that is a lie.
            guard count <= bytes.count / 4 else { throw Self.malformed }
            var strings: [String] = []
            strings.reserveCapacity(count)
            for _ in 0..<count { strings.append(try string()) }
            return strings
        }

        mutating func optional() throws(RedisError) -> [UInt8]? {
            switch try byte() {
            case 0: return nil
            case 1: return try data()
            default: throw Self.malformed
            }
        }
    }
}
