/// Who is connected where, across a cluster, as stored in Redis: the commands only (the
/// hub's writer and its reads send them, through the log's shared connection).
///
/// Each node has a random ID per hub (a restarted process is a new node). Keys, under the
/// log's prefix and hash tag (`eventstreamkit:{name}:`):
///
/// - `presence:<source>`: a hash, field = node ID, value = that node's connections of the
///   source. A node's field goes when its count reaches 0, and Redis deletes an empty hash:
///   a source connected nowhere has no key.
/// - `node:<id>`: the node's liveness, its total connection count, set with `PX` (three
///   writer intervals) on every write. A node that stops writing (killed, or its `run()`
///   cancelled) stops counting when it expires.
/// - `node:<id>:sources`: the sources the node has a field in, so that its fields can be
///   removed when it is dead.
/// - `nodes`: the set of node IDs.
///
/// Reads count live nodes only. Every write also reaps dead nodes (deletes their fields,
/// their source set and their membership), and a read drops the dead fields it meets: what
/// a dead node left is gone one write interval after its liveness expired, as long as any
/// node of the cluster runs. A node that finds its own liveness key gone (it was too slow
/// and was reaped, or Redis lost its data) writes all its counts again.
struct ClusterPresence: Sendable {
    /// This node's ID.
    let nodeID: String
    /// The prefix of every key (with the log's hash tag).
    let prefix: String
    /// How long a node counts after its last write: three writer intervals.
    let lifetime: Duration

    init(name: String, nodeID: String = ClusterPresence.newNodeID(), interval: Duration, prefix: String = "eventstreamkit") {
        self.nodeID = nodeID
        self.prefix = "\(prefix):{\(name)}:"
        lifetime = interval * 3
    }

    static func newNodeID() -> String {
        String(UInt64.random(in: 0...UInt64.max), radix: 36)
    }

    var nodesKey: String { prefix + "nodes" }
    var livenessKey: String { prefix + "node:" + nodeID }
    var sourcesKey: String { prefix + "node:" + nodeID + ":sources" }
    func presenceKey(_ source: String) -> String { prefix + "presence:" + source }

    /// Deletes what dead node `other` left: `prefix` is `ARGV[1]`, the nodes set `nodes`.
    private static let reap = """
        local function reap(prefix, nodes, other)
          local sources = prefix .. 'node:' .. other .. ':sources'
          for _, source in ipairs(redis.call('SMEMBERS', sources)) do
            redis.call('HDEL', prefix .. 'presence:' .. source, other)
          end
          redis.call('DEL', sources)
          redis.call('SREM', nodes, other)
        end
        """

    /// KEYS: liveness, sources, nodes, then one presence key per change. ARGV: prefix, node
    /// ID, total, lifetime in ms, then source and count per change. Returns 1 if the node's
    /// liveness key was gone (write everything again), else 0.
    static let writeScript = reap + """

        local prefix, id = ARGV[1], ARGV[2]
        local was = redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4], 'GET')
        redis.call('SADD', KEYS[3], id)
        for j = 0, #KEYS - 4 do
          local source, count = ARGV[5 + 2 * j], tonumber(ARGV[6 + 2 * j])
          if count > 0 then
            redis.call('HSET', KEYS[4 + j], id, count)
            redis.call('SADD', KEYS[2], source)
          else
            redis.call('HDEL', KEYS[4 + j], id)
            redis.call('SREM', KEYS[2], source)
          end
        end
        for _, other in ipairs(redis.call('SMEMBERS', KEYS[3])) do
          if other ~= id and redis.call('EXISTS', prefix .. 'node:' .. other) == 0 then reap(prefix, KEYS[3], other) end
        end
        if was then return 0 end
        return 1
        """

    /// The command that refreshes this node's liveness (with its `total` connections),
    /// writes `changes` (a count of 0 removes the node's field) and reaps dead nodes.
    func writeCommand(total: Int, changes: [(source: String, count: Int)]) -> [UInt8] {
        var arguments = ["EVAL", Self.writeScript, String(3 + changes.count), livenessKey, sourcesKey, nodesKey]
        arguments += changes.map { presenceKey($0.source) }
        arguments += [prefix, nodeID, String(total), String(max(1, Int(lifetime / .milliseconds(1))))]
        for change in changes { arguments += [change.source, String(change.count)] }
        return RESPValue.command(arguments)
    }

    /// Whether the node must write all its counts again, from the write script's reply.
    func writeResult(_ reply: RESPValue) throws(RedisError) -> Bool {
        if case .error(let message) = reply { throw RedisError(.commandFailed, "writing presence of node \(nodeID): \(message)") }
        guard let flag = reply.integer else { throw RedisError(.connectionFailed, "writing presence: unexpected reply \(reply)") }
        return flag == 1
    }

    /// KEYS: one presence key. ARGV: prefix, this node's ID. The sum over the other live nodes.
    static let countSourceScript = """
        local total = 0
        local fields = redis.call('HGETALL', KEYS[1])
        for i = 1, #fields, 2 do
          local node = fields[i]
          if node ~= ARGV[2] then
            if redis.call('EXISTS', ARGV[1] .. 'node:' .. node) == 1 then
              total = total + (tonumber(fields[i + 1]) or 0)
            else
              redis.call('HDEL', KEYS[1], node)
            end
          end
        end
        return total
        """

    /// The command that counts `source`'s connections on the other live nodes.
    func countCommand(source: String) -> [UInt8] {
        RESPValue.command(["EVAL", Self.countSourceScript, "1", presenceKey(source), prefix, nodeID])
    }

    /// KEYS: the nodes set. ARGV: prefix, this node's ID. The sum of the other live nodes'
    /// totals; dead nodes are reaped on the way.
    static let countAllScript = reap + """

        local total = 0
        for _, other in ipairs(redis.call('SMEMBERS', KEYS[1])) do
          if other ~= ARGV[2] then
            local count = redis.call('GET', ARGV[1] .. 'node:' .. other)
            if count then total = total + (tonumber(count) or 0) else reap(ARGV[1], KEYS[1], other) end
          end
        end
        return total
        """

    /// The command that counts every connection on the other live nodes.
    var countAllCommand: [UInt8] {
        RESPValue.command(["EVAL", Self.countAllScript, "1", nodesKey, prefix, nodeID])
    }

    /// A count, from a count script's reply.
    func countResult(_ reply: RESPValue) throws(RedisError) -> Int {
        if case .error(let message) = reply { throw RedisError(.commandFailed, "counting presence: \(message)") }
        guard let count = reply.integer, count >= 0 else { throw RedisError(.connectionFailed, "counting presence: unexpected reply \(reply)") }
        return Int(count)
    }
}
