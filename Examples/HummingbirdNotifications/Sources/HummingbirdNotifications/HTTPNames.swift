// A compile test: this file imports EventStreamKit beside Hummingbird and names Hummingbird's
// HTTP types unqualified. EventStreamKit exports no `HTTP…` type (the built-in server is its
// own module, EventStreamHTTP, which an app embedding the hub does not import), so none of
// these names is ambiguous. Were one to come back, this example would stop compiling, and CI
// builds it (test.sh).
import EventStreamKit
import Hummingbird

/// Hummingbird's and swift-http-types' `HTTP…` names, next to EventStreamKit's hub.
enum HTTPNames {
    /// Answers `GET` only, in swift-http-types' `HTTPRequest` and `HTTPResponse`, throwing
    /// Hummingbird's `HTTPError` otherwise.
    static func answer(_ request: HTTPRequest) throws -> HTTPResponse {
        guard request.method == .get else { throw HTTPError(.methodNotAllowed) }
        var fields = HTTPFields()
        fields[.contentType] = "text/event-stream"
        return HTTPResponse(status: .ok, headerFields: fields)
    }

    /// EventStreamKit's own header type, named apart from `HTTPFields`.
    static let streamHeaders: HeaderFields = ["Cache-Control": "no-store"]

    /// The hub, in the same file.
    static func hub() -> EventServer<String> { EventServer<String>() }
}
