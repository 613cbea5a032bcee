import EventStreamKit
import EventStreamHTTP

extension HTTPStatus {
    static let unsupportedMediaType = HTTPStatus(code: 415, reason: "Unsupported Media Type")
    static let tooManyRequests = HTTPStatus(code: 429, reason: "Too Many Requests")
}

/// The checks in front of the demo's state-changing routes (`POST /signin`, `/ticket`,
/// `/notify`, `/drop`), against cross-site request forgery: another site's page can make a browser send
/// a "simple" request (no custom headers, `text/plain` body) without asking, but neither an
/// `Authorization` header nor `Content-Type: application/json`, and its requests carry its
/// own `Origin`.
extension DemoApp {
    /// Refuses with 403 a request whose `Origin` is present and is not this server's own:
    /// `http://` or `https://` and the request's authority (its `Host`, or an absolute-form
    /// target's authority, which is what the server checked against its allowed hosts),
    /// compared without regard to case.
    /// `https://` is the page's origin behind a proxy that terminates TLS (nginx, in
    /// Deploy/); no other site can serve a page from this host and port, whatever the scheme.
    static func requireSameOrigin(_ request: HTTPRequest) throws(HTTPError) {
        guard let origin = request.headers["Origin"]?.lowercased() else { return }
        // Not `headers["Host"]`: `POST http://127.0.0.1:8080/ticket` with `Host: evil.example`
        // and `Origin: http://evil.example` passed the allowed hosts on its target and this
        // check on its Host field.
        guard let host = request.authority?.lowercased(), origin == "http://\(host)" || origin == "https://\(host)" else {
            throw HTTPError(.forbidden, "cross-origin requests are refused: Origin \(origin.debugDescription) is not this server's")
        }
    }

    /// Refuses with 415 a request whose media type is not `application/json` (parameters such
    /// as `; charset=utf-8` allowed).
    static func requireJSON(_ request: HTTPRequest) throws(HTTPError) {
        let mediaType = request.headers["Content-Type"]?.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first
        guard mediaType?.trimmingCharacters(in: " \t").lowercased() == "application/json" else {
            throw HTTPError(.unsupportedMediaType, "send Content-Type: application/json")
        }
    }

    /// The token of `Authorization: Bearer <token>`, if the request has one.
    static func bearerToken(of request: HTTPRequest) -> String? {
        guard let value = request.headers["Authorization"], value.count > 7, value.prefix(7).lowercased() == "bearer " else { return nil }
        return String(value.dropFirst(7))
    }

    /// The signed-in user who sends the request: `Authorization: Bearer <token>` only, never
    /// `?token=` (a URL ends up in logs and histories) and never the bench mode's anonymous user.
    ///
    /// - Throws: `HTTPError` 401, saying how to sign in.
    func sender(of request: HTTPRequest) async throws(HTTPError) -> String {
        guard let token = Self.bearerToken(of: request), let user = try await user(forToken: token) else {
            throw HTTPError(.unauthorized, #"sign in first: POST /signin with {"user": "name"}, then send Authorization: Bearer <token>"#)
        }
        return user
    }

    /// A refusal with `Retry-After` (which `HTTPError` cannot carry), in whole seconds, at least 1.
    static func refusal(_ status: HTTPStatus, _ message: String, retryAfter: Duration) -> HTTPResponse {
        let (seconds, attoseconds) = retryAfter.components
        var response = HTTPResponse(status: status, text: message + "\n")
        response.headers.add("Retry-After", String(max(1, seconds + (attoseconds > 0 ? 1 : 0))))
        return response
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> Substring {
        var result = self
        while let first = result.first, set.contains(first) { result = result.dropFirst() }
        while let last = result.last, set.contains(last) { result = result.dropLast() }
        return result
    }
}
