import EventStreamKit

/// An HTTP status code with its reason phrase.
public struct HTTPStatus: Hashable, Sendable, CustomStringConvertible {
    /// The numeric code.
    public let code: Int
    /// The reason phrase sent on the status line.
    public let reason: String

    /// A status with a custom reason phrase.
    public init(code: Int, reason: String) {
        self.code = code
        self.reason = reason
    }

    public static let ok = HTTPStatus(code: 200, reason: "OK")
    public static let accepted = HTTPStatus(code: 202, reason: "Accepted")
    public static let noContent = HTTPStatus(code: 204, reason: "No Content")
    public static let badRequest = HTTPStatus(code: 400, reason: "Bad Request")
    public static let unauthorized = HTTPStatus(code: 401, reason: "Unauthorized")
    public static let forbidden = HTTPStatus(code: 403, reason: "Forbidden")
    public static let notFound = HTTPStatus(code: 404, reason: "Not Found")
    public static let methodNotAllowed = HTTPStatus(code: 405, reason: "Method Not Allowed")
    public static let conflict = HTTPStatus(code: 409, reason: "Conflict")
    public static let payloadTooLarge = HTTPStatus(code: 413, reason: "Content Too Large")
    public static let misdirectedRequest = HTTPStatus(code: 421, reason: "Misdirected Request")
    public static let expectationFailed = HTTPStatus(code: 417, reason: "Expectation Failed")
    public static let requestHeaderFieldsTooLarge = HTTPStatus(code: 431, reason: "Request Header Fields Too Large")
    public static let internalServerError = HTTPStatus(code: 500, reason: "Internal Server Error")
    public static let notImplemented = HTTPStatus(code: 501, reason: "Not Implemented")
    public static let serviceUnavailable = HTTPStatus(code: 503, reason: "Service Unavailable")
    public static let httpVersionNotSupported = HTTPStatus(code: 505, reason: "HTTP Version Not Supported")

    /// The status with code `code` and its standard reason phrase, from the list above
    /// (an unknown code gets the reason phrase of its class).
    static func standard(code: Int) -> HTTPStatus {
        let known: [HTTPStatus] = [.ok, .accepted, .noContent, .badRequest, .unauthorized, .forbidden, .notFound, .methodNotAllowed, .conflict, .payloadTooLarge, .misdirectedRequest, .expectationFailed, .requestHeaderFieldsTooLarge, .internalServerError, .notImplemented, .serviceUnavailable, .httpVersionNotSupported]
        if let status = known.first(where: { $0.code == code }) { return status }
        return HTTPStatus(code: code, reason: code >= 500 ? "Server Error" : "Client Error")
    }

    public var description: String { "\(code) \(reason)" }
}
