extension EventServer {
    /// The number of open streams of `source` on every live node of the cluster; on a hub
    /// that is not in a cluster, ``clientCount(source:)``.
    ///
    /// "Is this user connected anywhere?": one Redis call (a Lua script) that sums the counts
    /// the other live nodes wrote, plus this node's own count, which is exact. Another node's
    /// count is as fresh as its last write: its connects and disconnects are written as they
    /// happen, coalesced (a few milliseconds behind), and a node that stopped (killed, or its
    /// ``run()`` cancelled) is counted until its liveness expires, three
    /// ``Cluster/presenceInterval``s after its last write.
    ///
    /// ```swift
    /// if try await hub.clusterClientCount(source: userID) == 0 {
    ///     // nobody to push to: send an e-mail instead
    /// }
    /// ```
    ///
    /// - Parameter source: The source to count.
    /// - Returns: Its open streams, on every live node.
    /// - Throws: ``EventServerError`` with ``EventServerError/Code/logUnavailable`` when
    ///   Redis cannot be reached (or does not answer within ``Cluster/timeout``).
    public func clusterClientCount(source: SourceID) async throws -> Int {
        guard let cluster else { return registry.count(source: source) }
        let others = try await presenceCount(cluster, cluster.presence.countCommand(source: cluster.encodeSource(source)))
        return others + registry.count(source: source)
    }

    /// The number of open streams on every live node of the cluster; on a hub that is not
    /// in a cluster, ``clientCount``.
    ///
    /// One Redis call that sums the totals the other live nodes wrote with this node's own;
    /// as fresh as ``clusterClientCount(source:)``.
    ///
    /// - Returns: The open streams, on every live node.
    /// - Throws: ``EventServerError`` with ``EventServerError/Code/logUnavailable`` when
    ///   Redis cannot be reached.
    public func clusterClientCount() async throws -> Int {
        guard let cluster else { return registry.count }
        let others = try await presenceCount(cluster, cluster.presence.countAllCommand)
        return others + registry.count
    }

    /// Ends every stream of `source` on every node of the cluster; on a hub that is not in a
    /// cluster, ``close(source:)``.
    ///
    /// In a cluster this appends a control record to the log and returns once the log has
    /// it; every node closes its own streams of `source` (``DisconnectReason/closedByServer``,
    /// what is queued is still written) when its tail delivers the record, in log order:
    /// events sent before this call reach them first, none sent after it does (on a
    /// connection that was open). The record is never delivered to a client nor replayed.
    /// A client that reconnects afterwards is not refused: authorize connections to refuse it.
    ///
    /// - Parameter source: The source to close.
    /// - Throws: ``EventServerError`` with ``EventServerError/Code/logUnavailable`` when
    ///   the log did not take the record (nothing was closed).
    public func closeEverywhere(source: SourceID) async throws {
        guard let cluster else { return close(source: source) }
        _ = try await appendToCluster(cluster, [ClusterRecord(kind: .close, recipients: .source(source), name: nil, data: nil, encode: cluster.encodeSource)])
    }

    private func presenceCount(_ link: ClusterLink, _ command: [UInt8]) async throws -> Int {
        do {
            return try link.presence.countResult(try await link.log.call(command))
        } catch {
            throw EventServerError(.logUnavailable, "the cluster's Redis is unavailable; cannot count connections: \(error)")
        }
    }

    /// Notes that `source`'s count on this node changed, for the presence writer.
    func notePresenceChange(_ source: SourceID, link: ClusterLink) {
        presenceChanged.insert(source)
        link.presenceWake.yield()
    }

    /// The most changes one presence write carries; more wait for the next write (right after).
    static var presenceBatchLimit: Int { 500 }

    /// Writes this node's presence until cancelled: its liveness every interval, and each
    /// change soon after it happens. Changes that come while a write is out are coalesced
    /// into the next one, so Redis sees at most one write in flight per node. A failed
    /// write is retried at the next wake (the changed sources are kept; their counts are
    /// read again then). Why it is built so: `Docs/Decisions/0009-cluster-presence.md`.
    nonisolated func writePresence(_ link: ClusterLink) async {
        await withDiscardingTaskGroup { group in
            group.addTask {
                link.presenceWake.yield()
                while (try? await Task.sleep(for: link.presenceInterval)) != nil { link.presenceWake.yield() }
            }
            group.addTask {
                for await _ in link.presenceWakes {
                    var more = true
                    while more, !Task.isCancelled {
                        more = await self.writePresenceOnce(link)
                    }
                }
            }
        }
    }

    /// One write of the changes (up to ``presenceBatchLimit``) and the liveness; `true` when
    /// there is more to write now.
    private func writePresenceOnce(_ link: ClusterLink) async -> Bool {
        let taken = Array(presenceChanged.prefix(Self.presenceBatchLimit))
        for source in taken { presenceChanged.remove(source) }
        let changes = taken.map { (source: link.encodeSource($0), count: registry.count(source: $0)) }
        let command = link.presence.writeCommand(total: registry.count, changes: changes)
        do {
            if try link.presence.writeResult(try await link.log.call(command)) {
                // This node was reaped (or Redis lost its data): write every count again.
                presenceChanged.formUnion(registry.sources)
            }
        } catch {
            presenceChanged.formUnion(taken)
            return false
        }
        return !presenceChanged.isEmpty
    }
}
