import EventStreamKit
import Foundation
import Vapor

@main
struct VaporNotifications {
    static func main() async throws {
        let port = parsePort(CommandLine.arguments)
        let bench = BenchOptions(CommandLine.arguments)
        if bench != nil {
            // Bench mode: warnings only. Vapor's route logging writes a line per request at
            // .info; the Hummingbird example logs no requests, and the two are compared.
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = .warning
                return handler
            }
        }
        // Vapor reads its own command line: hand it `serve` on 127.0.0.1 and the chosen port.
        let arguments = [CommandLine.arguments[0], "serve", "--hostname", "127.0.0.1", "--port", "\(port)"]
        let app = try await Application.make(Environment(name: "development", arguments: arguments))
        let hub = EventServer<String>()
        let probe = DisconnectProbe()
        routes(app, hub: hub, probe: probe, openEvents: bench != nil)

        // The hub's heartbeats and the probe's timer. Cancelled at SIGINT/SIGTERM, below;
        // run() also returns if the hub is drained (SIGUSR1), and then streams are refused.
        let background = Task {
            await withDiscardingTaskGroup { group in
                group.addTask { await probe.run() }
                if let bench, bench.rate > 0 { group.addTask { await BenchTicker(hub: hub, options: bench).run() } }
                await hub.run()
                group.cancelAll()
            }
        }
        // SIGUSR1 drains the hub: its streams end (each told when to reconnect) and new ones
        // are answered 503, while the server goes on serving, until SIGINT or SIGTERM.
        let drain = onSignal(SIGUSR1) { await hub.shutdown() }
        var failure: (any Error)?
        do {
            try await app.startup()
            let bound = app.http.server.shared.localAddress?.port ?? port
            FileHandle.standardOutput.write(Data("listening on http://127.0.0.1:\(bound)\n".utf8))  // unbuffered
            try await app.running?.onStop.get()  // until SIGINT or SIGTERM
        } catch {
            failure = error
        }
        // The hub goes first: cancelling run() shuts it down gracefully, every stream ends (told
        // when to reconnect), so the server's shutdown has no open response left to wait for.
        drain.cancel()
        background.cancel()
        await background.value
        try await app.asyncShutdown()
        if let failure { throw failure }
    }

    /// - Parameter openEvents: Bench mode: `/events` without a token is the anonymous source.
    static func routes(_ app: Application, hub: EventServer<String>, probe: DisconnectProbe, openEvents: Bool = false) {
        app.get("events") { request async throws -> Response in
            let token = request.query[String.self, at: "token"]
            let authorization = request.headers.first(name: .authorization)
            if openEvents, token == nil, authorization == nil {
                return try await hub.response(for: request, source: "anonymous", probe: probe)
            }
            guard let user = Users.user(authorization: authorization, queryToken: token) else {
                throw Abort(.unauthorized)
            }
            return try await hub.response(for: request, source: user, probe: probe)
        }

        app.post("notify", ":user") { request async throws -> Response in
            let user = request.parameters.get("user") ?? ""
            guard Users.names.contains(user) else { throw Abort(.notFound, reason: "no user \(user)") }
            let notification = try request.content.decode(Notification.self)
            let id = try await hub.send(notification, as: .notification, to: .source(user))
            return try await Sent(id: id).encodeResponse(status: .accepted, for: request)
        }

        app.post("broadcast") { request async throws -> Response in
            let notification = try request.content.decode(Notification.self)
            let id = try await hub.send(notification, as: .notification, to: .everyone)
            return try await Sent(id: id).encodeResponse(status: .accepted, for: request)
        }

        app.get("stats") { _ async -> Stats in
            Stats(clients: await hub.clientCount, eventsSent: await hub.eventsSent)
        }
    }
}

struct Sent: Content {
    var id: String
}

struct Stats: Content {
    var clients: Int
    var eventsSent: Int
}
