import EventStreamKit
import Foundation

/// A notification as users receive it: the `data` of a `notification` event, in JSON. It is
/// also the body of `POST /notify/:user` and `POST /broadcast`.
struct Notification: Codable, Sendable {
    var title: String
    var body: String
}

extension EventType<Notification> {
    static let notification = try! EventType("notification", marshal: .json())
}

/// The app's stand-in for authentication: a fixed token → user table. A real app resolves
/// its session or bearer token at the same place, before it calls `hub.connect(source:)`.
enum Users {
    static let tokens = ["token-alice": "alice", "token-bob": "bob"]
    static let names = Set(tokens.values)

    /// The user an `Authorization: Bearer <token>` header or a `?token=` query parameter
    /// names (browsers' `EventSource` cannot set headers), if the token is known.
    static func user(authorization: String?, queryToken: String?) -> String? {
        let bearer = authorization.flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
        return (bearer ?? queryToken).flatMap { tokens[$0] }
    }
}

/// `--port N` (0 picks a free port); the app always binds 127.0.0.1.
func parsePort(_ arguments: [String]) -> Int {
    guard let index = arguments.firstIndex(of: "--port") else { return 8080 }
    guard index + 1 < arguments.count, let port = Int(arguments[index + 1]), (0...65535).contains(port) else {
        fatalError("usage: \(arguments[0]) [--port 0...65535]")
    }
    return port
}

/// Runs `action` each time the process gets signal `number`, until the returned source is
/// cancelled. The signal's default action (for SIGUSR1: ending the process) is turned off.
func onSignal(_ number: Int32, _ action: @escaping @Sendable () async -> Void) -> any DispatchSourceSignal {
    signal(number, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
    source.setEventHandler { Task { await action() } }  // runs the action once, then ends
    source.resume()
    return source
}
