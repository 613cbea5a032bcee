import EventStreamKit
import EventStreamHTTP

/// Stream tickets: what the page puts in its `EventSource` URL instead of its token (see
/// `Docs/Authentication.md`).
extension DemoApp {
    /// `POST /ticket` with `Authorization: Bearer <token>`: `{"ticket": "…"}`, one stream of
    /// the token's user within the ticket's lifetime.
    func issueTicket(_ request: HTTPRequest) async throws -> HTTPResponse {
        // Minting a ticket is what a forged request would want: same checks as every POST.
        try Self.requireSameOrigin(request)
        let user = try await sender(of: request)
        let ticket: StreamTicket
        do {
            ticket = try tickets.issue(for: user)
        } catch {
            return Self.refusal(error.isPerSource ? .tooManyRequests : .serviceUnavailable, "no ticket: \(error)", retryAfter: error.retryAfter)
        }
        if let sharedTickets {
            do {
                try await sharedTickets.remember(ticket, of: user)
            } catch {
                _ = tickets.redeem(ticket)  // releases its place in the bounds
                return Self.refusal(.serviceUnavailable, "no ticket: the cluster's Redis is unreachable; try again later", retryAfter: .seconds(1))
            }
        }
        var response = try Self.json(["ticket": ticket.text])
        // A ticket is a credential: no cache may keep it.
        response.headers.add("Cache-Control", "no-store")
        return response
    }

    /// The user `text` was issued to, once: this node's ticket, or in a cluster any node's.
    ///
    /// - Throws: `HTTPError` 503 when in a cluster Redis cannot be asked.
    func user(forTicket text: String) async throws(HTTPError) -> String? {
        guard let ticket = StreamTicket(text) else { return nil }
        guard let sharedTickets else { return tickets.redeem(ticket)?.source }
        do {
            // Redis is the one place a ticket is used up: the local copy only bounds this
            // node's issues, and is released if it was this node's.
            let user = try await sharedTickets.redeem(ticket)
            _ = tickets.redeem(ticket)
            return user
        } catch {
            throw HTTPError(.serviceUnavailable, "cannot check the ticket: the cluster's Redis is unreachable")
        }
    }
}
