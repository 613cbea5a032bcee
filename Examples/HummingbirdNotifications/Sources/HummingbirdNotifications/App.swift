import EventStreamKit
import Foundation
import Hummingbird
import Metrics
import Prometheus
import ServiceLifecycle

@main
struct HummingbirdNotifications {
    static func main() async throws {
        let port = parsePort(CommandLine.arguments)
        let bench = BenchOptions(CommandLine.arguments)
        // The hub's metrics, through swift-metrics, into the registry that GET /metrics serves.
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Streams last minutes or hours: a Timer's default buckets stop at 10 s.
        factory.durationHistogramBuckets["eventstream_connection_duration_seconds"] = [1, 10, 60, 600, 3600, 14400].map { .seconds($0) }
        MetricsSystem.bootstrap(factory)
        var configuration = EventServer<String>.Configuration()
        configuration.observer = EventStreamMetrics<String>(eventNames: ["notification"])
        let hub = EventServer<String>(configuration: configuration)
        let app = Application(
            router: router(hub: hub, metrics: registry, openEvents: bench != nil),
            // A connection that sends no byte for 10 s while its request is unfinished, or
            // between requests, is closed; a streaming response is not (Hummingbird closes on
            // an idle read only while a request is being read or none is in progress).
            server: .http1(configuration: .init(idleTimeout: .seconds(10))),
            configuration: .init(address: .hostname("127.0.0.1", port: port)),
            onServerRunning: { channel in
                let line = "listening on http://127.0.0.1:\(channel.localAddress?.port ?? port)\n"
                FileHandle.standardOutput.write(Data(line.utf8))  // unbuffered: tests wait for it
            }
        )
        // A ServiceGroup shuts its services down in reverse order, so at SIGINT/SIGTERM the hub
        // goes first: its streams end (each told when to reconnect), then the server's graceful
        // shutdown, which waits for open responses, has none left to wait for.
        let services = ServiceGroup(configuration: .init(
            // A service that returns early stops the group: the ticker runs only when it ticks.
            services: [app, HubService(hub: hub)] + (bench.flatMap { $0.rate > 0 ? [BenchTicker(hub: hub, options: $0)] : nil } ?? []),
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: app.logger
        ))
        // SIGUSR1 drains the hub: its streams end (each told when to reconnect) and new ones
        // are answered 503, while the server goes on serving, until SIGINT or SIGTERM.
        let drain = onSignal(SIGUSR1) { await hub.shutdown() }
        defer { drain.cancel() }
        try await services.run()
    }

    /// - Parameters:
    ///   - metrics: What `GET /metrics` serves, in Prometheus's text format.
    ///   - openEvents: Bench mode: `/events` without a token is the anonymous source.
    static func router(hub: EventServer<String>, metrics: PrometheusCollectorRegistry, openEvents: Bool = false) -> Router<AppRequestContext> {
        let router = Router(context: AppRequestContext.self)

        router.get("events") { request, context -> Response in
            let token = request.uri.queryParameters.get("token")
            let authorization = request.headers[.authorization]
            if openEvents, token == nil, authorization == nil {
                return try await hub.response(for: request, context: context, source: "anonymous")
            }
            guard let user = Users.user(authorization: authorization, queryToken: token) else {
                throw HTTPError(.unauthorized)
            }
            return try await hub.response(for: request, context: context, source: user)
        }

        router.post("notify/:user") { request, context -> EditedResponse<Sent> in
            let user = try context.parameters.require("user")
            guard Users.names.contains(user) else { throw HTTPError(.notFound, message: "no user \(user)") }
            let notification = try await request.decode(as: Notification.self, context: context)
            let id = try await hub.send(notification, as: .notification, to: .source(user))
            return EditedResponse(status: .accepted, response: Sent(id: id))
        }

        router.post("broadcast") { request, context -> EditedResponse<Sent> in
            let notification = try await request.decode(as: Notification.self, context: context)
            let id = try await hub.send(notification, as: .notification, to: .everyone)
            return EditedResponse(status: .accepted, response: Sent(id: id))
        }

        router.get("stats") { _, _ in
            Stats(clients: await hub.clientCount, eventsSent: await hub.eventsSent)
        }

        router.get("metrics") { _, _ -> Response in
            var text: [UInt8] = []
            metrics.emit(into: &text)
            let headers: HTTPFields = [.contentType: "text/plain; version=0.0.4; charset=utf-8"]
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: text)))
        }
        return router
    }
}

/// The hub's `run()` (heartbeats) as a service: cancelled at graceful shutdown, which makes
/// it shut the hub down gracefully before it returns.
struct HubService: Service {
    let hub: EventServer<String>

    func run() async {
        await cancelWhenGracefulShutdown { await hub.run() }
        // run() also returns when the hub was drained (SIGUSR1); a service that returns stops
        // the group, so this one waits for the group's own shutdown.
        try? await gracefulShutdown()
    }
}

struct Sent: ResponseEncodable {
    var id: String
}

struct Stats: ResponseEncodable {
    var clients: Int
    var eventsSent: Int
}
