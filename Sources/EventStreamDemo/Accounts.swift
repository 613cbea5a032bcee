import EventStreamKit
import Synchronization

/// The demo's sign-in, standing in for real authentication: a user name gets a fresh random
/// token, and only the token opens that user's stream. A real app resolves its own session
/// or bearer token at the same place (`DemoApp.user(for:)`).
///
/// Tokens are 128 random bits from the system's secure generator, so they cannot be guessed;
/// each names one user, so one user's token cannot open another's stream. At most
/// ``capacity`` tokens are kept; past that, the oldest is forgotten.
final class Accounts: Sendable {
    static let capacity = 10_000

    private struct State {
        var users: [String: String] = [:]
        var issued: [String] = []
    }

    private let state = Mutex(State())

    /// Issues a token for `user`.
    ///
    /// - Throws: `HTTPError` 400 for a name that is not 1–32 letters, digits, `.`, `_` or `-`.
    func signIn(_ user: String) throws(HTTPError) -> String {
        guard Self.isValidName(user) else {
            throw HTTPError(.badRequest, "a user name is 1-32 letters, digits, '.', '_' or '-'")
        }
        var generator = SystemRandomNumberGenerator()
        let token = (0..<2).map { _ in
            let hex = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
        state.withLock { state in
            state.users[token] = user
            state.issued.append(token)
            if state.issued.count > Self.capacity {
                state.users[state.issued.removeFirst()] = nil
            }
        }
        return token
    }

    /// The user a token was issued to, if it is known.
    func user(forToken token: String) -> String? {
        state.withLock { $0.users[token] }
    }

    static func isValidName(_ name: String) -> Bool {
        (1...32).contains(name.utf8.count) && name.utf8.allSatisfy { byte in
            switch byte {
            case 48...57, 65...90, 97...122, 45, 46, 95: true
            default: false
            }
        }
    }
}
