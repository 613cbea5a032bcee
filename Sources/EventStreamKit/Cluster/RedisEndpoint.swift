import Foundation

/// Where a Redis server is: parsed from a `redis://[[user]:password@]host[:port][/database]`
/// URL, as redis-cli and most clients read it.
package struct RedisEndpoint: Hashable, Sendable, CustomStringConvertible {
    var host: String
    var port: UInt16
    var username: String?
    var password: String?
    var database: Int

    init(host: String, port: UInt16 = 6379, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses a `redis://` URL.
    ///
    /// - Throws: ``RedisError`` (``RedisError/Code/invalidEndpoint``) for another scheme, no
    ///   host, a port outside 1...65535 or a database that is not a number from 0.
    package init(url text: String) throws(RedisError) {
        guard let url = URL(string: text), url.scheme?.lowercased() == "redis", let host = url.host, !host.isEmpty else {
            throw RedisError(.invalidEndpoint, "not a redis://host[:port][/database] URL: \(Self.redacted(text))")
        }
        var port: UInt16 = 6379
        if let value = url.port {
            guard let valid = UInt16(exactly: value), valid > 0 else {
                throw RedisError(.invalidEndpoint, "port \(value) is not in 1...65535")
            }
            port = valid
        }
        var database = 0
        let path = url.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if !path.isEmpty {
            guard let number = Int(path), number >= 0 else { throw RedisError(.invalidEndpoint, "database \(path) is not a number") }
            database = number
        }
        let user = url.user.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding ?? $0 }
        let password = url.password.map { $0.removingPercentEncoding ?? $0 }
        self.init(host: host, port: port, username: password == nil ? nil : user, password: password ?? user, database: database)
    }

    /// `host:port/database`, without credentials: safe to log.
    package var description: String {
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return "redis://\(host):\(port)" + (database == 0 ? "" : "/\(database)")
    }

    private static func redacted(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@"), let scheme = text.range(of: "://") else { return text }
        return String(text[..<scheme.upperBound]) + "…" + String(text[at...])
    }
}

/// A failure talking to Redis.
package struct RedisError: Error, CustomStringConvertible, Hashable, Sendable {
    package enum Code: Hashable, Sendable {
        /// The `redis://` URL is malformed.
        case invalidEndpoint
        /// Connecting failed, or the connection broke (closed, reset, an invalid reply).
        case connectionFailed
        /// No answer in time.
        case timedOut
        /// The server refused a command (`-ERR …`).
        case commandFailed
        /// Another call is in progress on the connection.
        case busy
        /// The calling task was cancelled.
        case cancelled
    }

    package let code: Code
    package let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    package var description: String { "Redis: \(message)" }
}
