/// One shared connection to Redis for short commands, for any number of callers: the calls
/// waiting at one moment go out in one pipelined write, in call order, and each caller gets
/// its own replies. A connection that broke, or that Redis closed while it was idle, is
/// replaced at the next call; a call while Redis is unreachable throws at once.
///
/// Package access: the demo keeps its sign-in tokens in the cluster's Redis with it. Not for
/// blocking commands (`XREAD BLOCK`), which would hold every other caller up.
package actor RedisClient {
    package let endpoint: RedisEndpoint
    /// How long a call may wait for Redis, connecting included.
    package let timeout: Duration
    private var connection: RedisConnection?
    private var waiting: [(commands: [[UInt8]], continuation: CheckedContinuation<Result<[RESPValue], RedisError>, Never>)] = []
    private var isFlushing = false

    package init(endpoint: RedisEndpoint, timeout: Duration = .seconds(2)) {
        self.endpoint = endpoint
        self.timeout = timeout
    }

    /// Sends `commands` together and returns one reply per command, in order. An error reply
    /// (`-ERR …`) is a reply, not a thrown error.
    ///
    /// - Throws: ``RedisError`` when Redis cannot be reached or does not answer in time.
    package func send(_ commands: [[String]]) async throws(RedisError) -> [RESPValue] {
        try await send(encoded: commands.map { RESPValue.command($0) })
    }

    /// Sends commands already encoded (``RESPValue/command(_:)``, binary arguments), as
    /// ``send(_:)`` does.
    package func send(encoded: [[UInt8]]) async throws(RedisError) -> [RESPValue] {
        guard !encoded.isEmpty else { return [] }
        let result = await withCheckedContinuation { continuation in
            waiting.append((encoded, continuation))
            guard !isFlushing else { return }
            isFlushing = true
            // Ends when no call is waiting; every waiting call is resumed before it does.
            Task { await self.flush() }
        }
        return try result.get()
    }

    /// Sends one command and returns its reply; an error reply throws
    /// ``RedisError/Code/commandFailed``.
    package func call(_ command: String...) async throws(RedisError) -> RESPValue {
        let reply = try await send([command])[0]
        if case .error(let message) = reply { throw RedisError(.commandFailed, "\(command.first ?? ""): \(message)") }
        return reply
    }

    /// Closes the connection; later calls open a new one.
    package func close() {
        connection?.close()
        connection = nil
    }

    private func flush() async {
        while !waiting.isEmpty {
            let batch = waiting
            waiting = []
            let result: Result<[RESPValue], RedisError>
            do throws(RedisError) {
                let connection = try await connected()
                result = .success(try await connection.send(batch.flatMap(\.commands), timeout: timeout))
            } catch {
                connection?.close()
                connection = nil
                result = .failure(error)
            }
            var offset = 0
            for call in batch {
                call.continuation.resume(returning: result.map { replies in
                    defer { offset += call.commands.count }
                    return Array(replies[offset..<offset + call.commands.count])
                })
            }
        }
        isFlushing = false
    }

    private func connected() async throws(RedisError) -> RedisConnection {
        if let connection {
            if connection.isUsable { return connection }
            connection.close()  // Redis went away while it was idle
            self.connection = nil
        }
        let fresh = try await RedisConnection.connect(to: endpoint, timeout: timeout)
        connection = fresh
        return fresh
    }
}
