// A compile test: this file imports EventStreamKit beside Vapor and names Vapor's HTTP types
// unqualified (its own and the ones it exports from NIOHTTP1). EventStreamKit exports no
// `HTTP…` type (the built-in server is its own module, EventStreamHTTP, which an app
// embedding the hub does not import), so none of these names is ambiguous. Were one to come
// back, this example would stop compiling, and CI builds it (test.sh).
import EventStreamKit
import Vapor

/// Vapor's `HTTP…` names, next to EventStreamKit's hub.
enum HTTPNames {
    /// Answers `GET` only, with Vapor's `HTTPStatus`, `HTTPHeaders` and `HTTPMethod`.
    static func answer(method: HTTPMethod) throws -> Response {
        guard method == .GET else { throw Abort(HTTPStatus.methodNotAllowed) }
        var headers = HTTPHeaders()
        headers.contentType = HTTPMediaType(type: "text", subType: "event-stream")
        return Response(status: HTTPResponseStatus.ok, version: HTTPVersion.http1_1, headers: headers)
    }

    /// Vapor's own server's settings type.
    static func port(of configuration: HTTPServer.Configuration) -> Int { configuration.port }

    /// EventStreamKit's own header type, named apart from `HTTPHeaders`.
    static let streamHeaders: HeaderFields = ["Cache-Control": "no-store"]

    /// The hub, in the same file.
    static func hub() -> EventServer<String> { EventServer<String>() }
}
