/// The cluster's event log as stored in Redis 7: one stream per log name, and a hash beside
/// it with the log's epoch and last sequence number.
///
/// - **Appends** run one Lua script (atomic on the server): it takes the next sequence
///   numbers with `HINCRBY` and adds each event with `XADD <sequence>-0 MAXLEN ~ N`, so the
///   sequence is contiguous across every node that appends, and a stream ID is the event's
///   sequence. A batch is contiguous too.
/// - **The epoch** is created by the first append after the hash is gone (a new log, or a
///   Redis that restarted without its data, or failed over and lost it): the stream is then
///   deleted and the sequence starts again at 1, under the new epoch. Every record carries
///   its epoch, so a reader sees the change in the records themselves.
/// - **Reads** are `XRANGE` (history) and `XREAD` (the tail), from a sequence number.
///
/// The commands only: connections, retries and ordering of delivery are the caller's.
/// (The design follows Centrifuge's Redis broker: an epoch and an offset per channel.)
struct RedisEventStream: Sendable {
    /// One event as stored: its sequence, the epoch it was appended under, its bytes.
    struct Record: Hashable, Sendable {
        let sequence: UInt64
        let epoch: String
        let payload: [UInt8]
    }

    /// The stream's key.
    let streamKey: String
    /// The hash with `epoch` and `seq`.
    let metaKey: String
    /// `MAXLEN ~` of the stream: about how many events Redis keeps.
    let maxLength: Int

    /// Keys under `prefix` for the log `name`. The two keys share a hash tag, so that they
    /// live on one shard of a Redis Cluster too.
    init(name: String, prefix: String = "eventstreamkit", maxLength: Int) {
        streamKey = "\(prefix):{\(name)}:stream"
        metaKey = "\(prefix):{\(name)}:meta"
        self.maxLength = max(1, maxLength)
    }

    static let appendScript = """
        local epoch = redis.call('HGET', KEYS[2], 'epoch')
        if not epoch then
          epoch = ARGV[2]
          redis.call('DEL', KEYS[1])
          redis.call('HSET', KEYS[2], 'epoch', epoch, 'seq', 0)
        end
        local first = 0
        for i = 3, #ARGV do
          local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
          if first == 0 then first = seq end
          redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], seq .. '-0', 'e', epoch, 'p', ARGV[i])
        end
        return {epoch, first}
        """

    /// The command that appends `payloads`, in order; a new log takes `candidateEpoch`.
    func appendCommand(_ payloads: [[UInt8]], candidateEpoch: String) -> [UInt8] {
        RESPValue.command([Array("EVAL".utf8), Array(Self.appendScript.utf8), Array("2".utf8), Array(streamKey.utf8), Array(metaKey.utf8),
                           Array(String(maxLength).utf8), Array(candidateEpoch.utf8)] + payloads)
    }

    /// The epoch and the first sequence number of an appended batch, from the script's reply.
    func appendResult(_ reply: RESPValue) throws(RedisError) -> (epoch: String, first: UInt64) {
        if case .error(let message) = reply { throw RedisError(.commandFailed, "appending to \(streamKey): \(message)") }
        guard let elements = reply.elements, elements.count == 2, let epoch = elements[0].string,
              let first = elements[1].integer, first > 0 else {
            throw RedisError(.connectionFailed, "appending to \(streamKey): unexpected reply \(reply)")
        }
        return (epoch, UInt64(first))
    }

    /// Starts a new epoch (sequence 0, the stream dropped) if the log has none, or if its
    /// epoch is `ARGV[2]` (a rolled-back log; empty: never); returns the epoch and sequence.
    static let epochScript = """
        local epoch = redis.call('HGET', KEYS[2], 'epoch')
        if (not epoch) or (ARGV[2] ~= '' and epoch == ARGV[2]) then
          epoch = ARGV[1]
          redis.call('DEL', KEYS[1])
          redis.call('HSET', KEYS[2], 'epoch', epoch, 'seq', 0)
        end
        return {epoch, redis.call('HGET', KEYS[2], 'seq')}
        """

    /// The command that makes sure the log has an epoch (taking `candidate` if it has none),
    /// or replaces the epoch `replacing` with `candidate`.
    func epochCommand(candidate: String, replacing: String? = nil) -> [UInt8] {
        RESPValue.command(["EVAL", Self.epochScript, "2", streamKey, metaKey, candidate, replacing ?? ""])
    }

    /// The epoch and last sequence number, from the epoch script's reply.
    func epochResult(_ reply: RESPValue) throws(RedisError) -> (epoch: String, last: UInt64) {
        if case .error(let message) = reply { throw RedisError(.commandFailed, "setting the epoch of \(metaKey): \(message)") }
        guard let elements = reply.elements, elements.count == 2, let epoch = elements[0].string, let last = elements[1].integer, last >= 0 else {
            throw RedisError(.connectionFailed, "setting the epoch of \(metaKey): unexpected reply \(reply)")
        }
        return (epoch, UInt64(last))
    }

    /// `XRANGE` of the records after `sequence`, at most `count`.
    func rangeCommand(after sequence: UInt64, count: Int) -> [UInt8] {
        RESPValue.command(["XRANGE", streamKey, "(\(sequence)-0", "+", "COUNT", String(max(1, count))])
    }

    /// `XREAD` of the records after `sequence`, waiting up to `block` on the server.
    func tailCommand(after sequence: UInt64, count: Int, block: Duration) -> [UInt8] {
        let milliseconds = max(1, Int(block / .milliseconds(1)))
        return RESPValue.command(["XREAD", "COUNT", String(max(1, count)), "BLOCK", String(milliseconds), "STREAMS", streamKey, "\(sequence)-0"])
    }

    /// `HMGET` of the epoch and last sequence number.
    var stateCommand: [UInt8] { RESPValue.command(["HMGET", metaKey, "epoch", "seq"]) }

    /// The epoch and last sequence, `nil` if the log has none (new, or lost).
    func stateResult(_ reply: RESPValue) throws(RedisError) -> (epoch: String, last: UInt64)? {
        if case .error(let message) = reply { throw RedisError(.commandFailed, "reading \(metaKey): \(message)") }
        guard let elements = reply.elements, elements.count == 2 else {
            throw RedisError(.connectionFailed, "reading \(metaKey): unexpected reply \(reply)")
        }
        guard let epoch = elements[0].string else { return nil }
        guard let last = UInt64(exactly: elements[1].integer ?? 0) else {
            throw RedisError(.connectionFailed, "reading \(metaKey): a negative sequence number")
        }
        return (epoch, last)
    }

    /// The records of an `XRANGE` reply.
    func rangeResult(_ reply: RESPValue) throws(RedisError) -> [Record] {
        if case .error(let message) = reply { throw RedisError(.commandFailed, "reading \(streamKey): \(message)") }
        guard let entries = reply.elements else { throw RedisError(.connectionFailed, "reading \(streamKey): unexpected reply \(reply)") }
        return try entries.map(record)
    }

    /// The records of an `XREAD` reply (none if it timed out).
    func tailResult(_ reply: RESPValue) throws(RedisError) -> [Record] {
        if case .error(let message) = reply { throw RedisError(.commandFailed, "tailing \(streamKey): \(message)") }
        if case .array(nil) = reply { return [] }
        guard let streams = reply.elements, let stream = streams.first?.elements, stream.count == 2, let entries = stream[1].elements else {
            throw RedisError(.connectionFailed, "tailing \(streamKey): unexpected reply \(reply)")
        }
        return try entries.map(record)
    }

    /// The highest sequence number the append script can make (`HINCRBY` stops at
    /// `Int64.max`): an entry numbered higher was not written by a node.
    static let maxSequence = UInt64(Int64.max)

    private func record(_ entry: RESPValue) throws(RedisError) -> Record {
        guard let parts = entry.elements, parts.count == 2, let id = parts[0].string, let fields = parts[1].elements,
              let sequence = id.split(separator: "-").first.flatMap({ UInt64($0) }) else {
            throw RedisError(.connectionFailed, "reading \(streamKey): malformed entry \(entry)")
        }
        guard (1...Self.maxSequence).contains(sequence) else {
            throw RedisError(.connectionFailed, "reading \(streamKey): entry \(id) has a sequence number no node writes (written by something else?)")
        }
        var epoch: String?
        var payload: [UInt8]?
        var index = 0
        while index + 1 < fields.count {
            switch fields[index].string {
            case "e": epoch = fields[index + 1].string
            case "p": payload = fields[index + 1].bytes
            default: break
            }
            index += 2
        }
        guard let epoch, let payload else { throw RedisError(.connectionFailed, "reading \(streamKey): entry \(id) lacks its epoch or payload") }
        return Record(sequence: sequence, epoch: epoch, payload: payload)
    }
}
