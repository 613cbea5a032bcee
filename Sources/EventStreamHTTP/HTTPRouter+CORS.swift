import EventStreamKit

extension HTTPRouter {
    /// Cross-origin access for pages on a list of other origins, with or without credentials
    /// (cookies): the `Access-Control-*` headers, decided per request from its `Origin`.
    ///
    /// ```swift
    /// var router = HTTPRouter()
    /// router.cors = HTTPRouter.CORS(allowedOrigins: ["https://app.example.com"], allowsCredentials: true)
    /// ```
    ///
    /// With this set, every response the router's server writes for a request says
    /// `Vary: Origin` (a cache must not hand one origin's answer to another), and a request
    /// whose `Origin` is on the list also gets:
    /// - `Access-Control-Allow-Origin` with that origin, exactly as the request sent it: never
    ///   `*`, which browsers refuse with credentials, and never an origin not on the list;
    /// - `Access-Control-Allow-Credentials: true` if ``allowsCredentials``;
    /// - `Access-Control-Expose-Headers` if ``exposedHeaders`` is not empty.
    ///
    /// A preflight (`OPTIONS` on a known path) from a listed origin is answered 204 with
    /// `Access-Control-Allow-Methods` (the path's methods), `Access-Control-Allow-Headers`
    /// (``allowedHeaders``, not whatever the request asked for) and `Access-Control-Max-Age`.
    /// A request from an origin not on the list gets no `Access-Control-*` header at all, and
    /// its browser keeps the answer from the page.
    ///
    /// - Warning: CORS only keeps a foreign page from *reading* answers. A browser still sends
    ///   a cross-site "simple" request (a form `POST`, say) with its cookies: a route that
    ///   changes state needs its own CSRF defence (check `Origin`, `SameSite` cookies). See
    ///   `Docs/Authentication.md`.
    public struct CORS: Sendable {
        /// The origins allowed, as `scheme://host[:port]`, compared without regard to case.
        /// `*` and `null` (sandboxed frames, `file:` pages) are ignored: list real origins.
        public let allowedOrigins: Set<String>
        /// Whether pages on those origins may send credentials (cookies, TLS client
        /// certificates) and read the answers: `Access-Control-Allow-Credentials: true`.
        public var allowsCredentials: Bool
        /// The request headers a preflight allows. Default: `Last-Event-ID`, `Content-Type`,
        /// `Authorization`.
        public var allowedHeaders: [String]
        /// The response headers a page may read beyond the CORS-safelisted ones. Default: none.
        public var exposedHeaders: [String]
        /// How long a browser may cache a preflight's answer. Default: 10 minutes (Chromium
        /// caps it at 2 hours).
        public var maxAge: Duration

        /// Allows pages on `allowedOrigins`.
        ///
        /// - Parameters:
        ///   - allowedOrigins: `scheme://host[:port]` each, as a browser sends it in `Origin`
        ///     (a trailing `/` is dropped; `*` and `null` are ignored).
        ///   - allowsCredentials: Whether those pages may send cookies. Default: `false`.
        ///   - allowedHeaders: The request headers a preflight allows.
        ///   - exposedHeaders: The response headers a page may read.
        ///   - maxAge: How long a browser caches a preflight's answer.
        public init(
            allowedOrigins: [String],
            allowsCredentials: Bool = false,
            allowedHeaders: [String] = ["Last-Event-ID", "Content-Type", "Authorization"],
            exposedHeaders: [String] = [],
            maxAge: Duration = .seconds(600)
        ) {
            self.allowedOrigins = Set(allowedOrigins.compactMap { origin in
                var origin = origin.lowercasedASCII
                if origin.hasSuffix("/") { origin.removeLast() }
                return origin == "*" || origin == "null" || origin.isEmpty ? nil : origin
            })
            self.allowsCredentials = allowsCredentials
            self.allowedHeaders = allowedHeaders
            self.exposedHeaders = exposedHeaders
            self.maxAge = maxAge
        }

        /// The request's `Origin`, if it is on the list.
        func allowedOrigin(of request: HTTPRequest) -> String? {
            guard let origin = request.headers["Origin"], allowedOrigins.contains(origin.lowercasedASCII) else { return nil }
            return origin
        }

        /// The headers for an answer to `request` (none but `Vary` for a foreign origin).
        func headers(for request: HTTPRequest) -> [(name: String, value: String)] {
            var headers: [(name: String, value: String)] = [("Vary", "Origin")]
            guard let origin = allowedOrigin(of: request) else { return headers }
            headers.append(("Access-Control-Allow-Origin", origin))
            if allowsCredentials { headers.append(("Access-Control-Allow-Credentials", "true")) }
            if !exposedHeaders.isEmpty { headers.append(("Access-Control-Expose-Headers", exposedHeaders.joined(separator: ", "))) }
            return headers
        }

        /// The headers that answer a preflight from an allowed origin, beyond ``headers(for:)``.
        func preflightHeaders(for request: HTTPRequest, methods: [String]) -> [(name: String, value: String)] {
            guard allowedOrigin(of: request) != nil else { return [] }
            var headers: [(name: String, value: String)] = [("Access-Control-Allow-Methods", methods.joined(separator: ", "))]
            if !allowedHeaders.isEmpty { headers.append(("Access-Control-Allow-Headers", allowedHeaders.joined(separator: ", "))) }
            headers.append(("Access-Control-Max-Age", String(Int(maxAge / .seconds(1)))))
            return headers
        }
    }

    /// The headers the server adds to its answer to `request` (`nil`: a request it could not
    /// read): ``corsHeaders``, then those of ``cors`` for the request's `Origin`.
    func extraHeaders(for request: HTTPRequest?) -> [(name: String, value: String)] {
        guard let cors, let request else { return corsHeaders }
        return corsHeaders + cors.headers(for: request)
    }
}
