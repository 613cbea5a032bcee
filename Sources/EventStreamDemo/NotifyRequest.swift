import EventStreamKit
import EventStreamHTTP
import Foundation

/// A notification as users receive it: the `data` of a `notification` event, in JSON.
struct Notification: Codable, Sendable {
    var title: String
    var body: String
    var from: String
    /// When it was sent, ISO 8601.
    var sentAt: String
}

/// A headline on the `news` channel.
struct News: Codable, Sendable {
    var headline: String
    var sentAt: String
}

/// The body of `POST /notify`, checked strictly: unknown fields, wrong types and empty or
/// oversized text are refused with 400 and a message that says what was wrong.
///
/// Text is measured in UTF-8 bytes, not in characters: one character can be a base letter
/// with any number of combining marks, so a limit in characters bounds nothing that the
/// hub's backlog keeps.
///
/// ```json
/// {"to": ["alice", "bob"], "title": "Lunch?", "body": "12:30 downstairs"}
/// {"except": ["bob"], "title": "Surprise party for bob"}
/// {"channel": "news", "title": "Flash"}
/// {"title": "Hello everyone"}
/// ```
struct NotifyRequest {
    static let fields: Set<String> = ["to", "except", "channel", "title", "body"]
    static let maxTitleBytes = 200
    static let maxBodyBytes = 2000

    var recipients: Recipients<String>
    /// Set when the notification goes to a channel: it is sent as a headline there.
    var channel: String?
    var title: String
    var body: String

    init(json: [UInt8]) throws(HTTPError) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any] else {
            throw HTTPError(.badRequest, "the body must be a JSON object")
        }
        if let unknown = object.keys.sorted().first(where: { !Self.fields.contains($0) }) {
            throw HTTPError(.badRequest, "unknown field \(unknown.debugDescription); expected to, except, channel, title, body")
        }
        guard let title = object["title"] as? String, (1...Self.maxTitleBytes).contains(title.utf8.count) else {
            throw HTTPError(.badRequest, "title must be a string of 1-\(Self.maxTitleBytes) bytes in UTF-8")
        }
        let body = object["body"] ?? ""
        guard let body = body as? String, body.utf8.count <= Self.maxBodyBytes else {
            throw HTTPError(.badRequest, "body must be a string of at most \(Self.maxBodyBytes) bytes in UTF-8")
        }
        let targets = ["to", "except", "channel"].filter { object[$0] != nil }
        guard targets.count <= 1 else {
            throw HTTPError(.badRequest, "use at most one of to, except and channel")
        }
        switch targets.first {
        case "to": recipients = .only(try Self.users(object["to"], field: "to", allowEmpty: false))
        case "except": recipients = .everyone(except: try Self.users(object["except"], field: "except", allowEmpty: true))
        case "channel":
            guard let channel = object["channel"] as? String, channel == "news" else {
                throw HTTPError(.badRequest, "the only channel is \"news\"")
            }
            recipients = .channel(channel)
            self.channel = channel
        default: recipients = .everyone
        }
        self.title = title
        self.body = body
    }

    private static func users(_ value: Any?, field: String, allowEmpty: Bool) throws(HTTPError) -> Set<String> {
        guard let names = value as? [String], allowEmpty || !names.isEmpty, names.count <= 1000 else {
            throw HTTPError(.badRequest, "\(field) must be an array of user names\(allowEmpty ? "" : ", not empty")")
        }
        if let bad = names.first(where: { !Accounts.isValidName($0) }) {
            throw HTTPError(.badRequest, "\(bad.debugDescription) in \(field) is not a user name")
        }
        return Set(names)
    }
}
