import EventStreamHTTP
import EventStreamKit
import Testing

// The code of the DocC article "Per-user notifications"
// (Sources/EventStreamKit/EventStreamKit.docc/PerUserNotifications.md). Every swift block of
// the article is an excerpt of this file, verbatim (Docs/check_article_snippets.py checks it),
// and the tests at the end run it against the built-in server on loopback. Plain imports, not
// @testable: the article uses public API only.

/// Who a stream belongs to: the hub's source ID. Any `Hashable & Sendable` type will do.
struct UserID: Hashable, Sendable {
    var rawValue: String
}

/// What a user is told, sent as JSON in events named `notification`.
struct UserNotification: Codable, Sendable {
    var title: String
    var body: String
}

/// The app's notifications: one hub for every user's streams, and the event type they carry.
struct Notifications: Sendable {
    let hub = EventServer<UserID>()
    let notification: EventType<UserNotification>

    init() throws {
        notification = try EventType("notification", marshal: .json())
    }
}

extension Notifications {
    /// Opens a stream for `user`, given the request's `Last-Event-ID` header: the hub first
    /// replays what the user missed after that event, then the stream goes live.
    func connect(_ user: UserID, lastEventID: String?) async throws -> EventConnection<UserID> {
        try await hub.connect(source: user, lastEventID: lastEventID)
    }
}

extension Notifications {
    /// Sends `note` to every open stream of `user` (each of their tabs and devices), and keeps
    /// it in the backlog for replay. Returns the event's ID.
    @discardableResult
    func send(_ note: UserNotification, to user: UserID) async throws -> String {
        try await hub.send(note, as: notification, to: .source(user))
    }
}

/// Your app's sign-in, reduced here to a table of bearer tokens.
struct Sessions: Sendable {
    var users: [String: UserID]

    func user(for request: HTTPRequest) -> UserID? {
        guard let authorization = request.headers["Authorization"], authorization.hasPrefix("Bearer ") else {
            return nil
        }
        return users[String(authorization.dropFirst("Bearer ".count))]
    }
}

/// The built-in server: `GET /notifications` authenticates the request, then opens the
/// user's stream with the request's `Last-Event-ID`.
func makeServer(_ notifications: Notifications, sessions: Sessions, port: UInt16) throws -> HTTPServer {
    var router = HTTPRouter()
    router.events("/notifications", from: notifications.hub) { request in
        // A thrown HTTPError answers with its status, and no stream opens.
        guard let user = sessions.user(for: request) else { throw HTTPError(.unauthorized) }
        return user
    }
    return try HTTPServer(router: router, configuration: .init(host: "127.0.0.1", port: port))
}

/// A user's notifications, read with EventStreamKit's client. `lastEventID` resumes after the
/// last notification the app handled (`""`: from now on); after a dropped connection the
/// client reconnects by itself, with the ID of the last event it received.
func notificationStream(at url: String, token: String, lastEventID: String = "") throws -> DecodedEvents<UserNotification> {
    let source = try EventSource(url: url, headers: ["Authorization": "Bearer \(token)"], lastEventID: lastEventID)
    return source.values(of: "notification", as: .json(UserNotification.self))
}

// End of the article's code.

@Suite("The Per-user notifications article")
struct PerUserNotificationsArticleTests {
    let alice = UserID(rawValue: "alice")
    let bob = UserID(rawValue: "bob")

    @Test("over the built-in server, a user's stream resumes after its Last-Event-ID with that user's notifications only")
    func builtInServer() async throws {
        let notifications = try Notifications()
        let server = try makeServer(notifications, sessions: Sessions(users: ["t-alice": alice, "t-bob": bob]), port: 0)
        let running = Task { await server.run() }
        let url = "http://127.0.0.1:\(server.port)/notifications"

        // While alice is away: two for her, one for bob.
        let seen = try await notifications.send(UserNotification(title: "Build failed", body: "main is red"), to: alice)
        try await notifications.send(UserNotification(title: "Build fixed", body: "main is green"), to: alice)
        try await notifications.send(UserNotification(title: "Review", body: "for bob"), to: bob)

        let hub = notifications.hub
        let user = alice
        let sender = Task {
            try await waitUntil("alice's stream") { await hub.clientCount(source: user) == 1 }
            try await notifications.send(UserNotification(title: "Deployed", body: "v2 is live"), to: user)
        }
        let titles = try await withDeadline(.seconds(10), "alice's notifications") {
            var titles: [String] = []
            for try await note in try notificationStream(at: url, token: "t-alice", lastEventID: seen) {
                titles.append(note.title)
                if titles.count == 2 { break }
            }
            return titles
        }
        try await sender.value
        // The one she had seen is not sent again; bob's never reaches her.
        #expect(titles == ["Build fixed", "Deployed"])

        // Without a known token, no stream opens.
        let refused = try await withDeadline(.seconds(10), "the refusal") {
            do {
                for try await _ in try notificationStream(at: url, token: "t-mallory") {}
                return false
            } catch let error as EventSourceError {
                return error.code == .badStatus
            }
        }
        #expect(refused)

        server.shutdown()
        await running.value
    }

    @Test("embedded: connect(_:lastEventID:) replays what the user missed after that ID, then goes live")
    func embedded() async throws {
        let notifications = try Notifications()
        let seen = try await notifications.send(UserNotification(title: "One", body: ""), to: alice)
        try await notifications.send(UserNotification(title: "Two", body: ""), to: alice)
        try await notifications.send(UserNotification(title: "For bob", body: ""), to: bob)

        let connection = try await notifications.connect(alice, lastEventID: seen)
        let recorder = StreamRecorder(connection)
        try await notifications.send(UserNotification(title: "Three", body: ""), to: alice)

        let events = try await recorder.waitForEvents(2)
        #expect(events.map(\.type) == ["notification", "notification"])
        #expect(try events.map { try $0.decode(.json(UserNotification.self)).title } == ["Two", "Three"])
        #expect(notifications.hub.responseHeaders.contains { $0.name == "Content-Type" && $0.value.hasPrefix("text/event-stream") })
        await recorder.cancel()
    }
}
