/// A short-lived, single-use credential for opening one event stream: 128 random bits, written
/// as 32 lowercase hexadecimal digits.
///
/// A browser's `EventSource` cannot send headers, so whatever authenticates its stream goes in
/// the URL, where proxies, access logs and the browser's history keep it. A ticket is what goes
/// there instead of a long-lived token or session ID: the page asks for one with a `POST` that
/// carries the real credentials, and opens `/events?ticket=…` at once. By the time the URL is
/// read from a log, the ticket has been used or has expired (see ``StreamTickets``).
///
/// The first 64 bits select the ticket in a store; the last 64 are compared in one machine
/// word, so the time a lookup takes does not tell how much of a guess was right.
public struct StreamTicket: Hashable, Sendable, CustomStringConvertible {
    /// Selects the ticket in a store.
    let selector: UInt64
    /// Proves the ticket: compared in one step, never byte by byte.
    let verifier: UInt64

    init(selector: UInt64, verifier: UInt64) {
        self.selector = selector
        self.verifier = verifier
    }

    /// A fresh ticket from the system's secure generator.
    public static func random() -> StreamTicket {
        var generator = SystemRandomNumberGenerator()
        return StreamTicket(selector: generator.next(), verifier: generator.next())
    }

    /// Reads a ticket as a client sent it back.
    ///
    /// - Parameter text: 32 hexadecimal digits (either case).
    /// - Returns: `nil` for anything else, so a malformed ticket costs no lookup.
    public init?(_ text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        guard utf8.count == 32, let selector = Self.hex(utf8[0..<16]), let verifier = Self.hex(utf8[16..<32]) else { return nil }
        self.init(selector: selector, verifier: verifier)
    }

    /// The 32 lowercase hexadecimal digits to hand to the client.
    public var text: String {
        Self.digits(selector) + Self.digits(verifier)
    }

    /// `StreamTicket(…)`: a ticket interpolated into a log line by mistake does not leak.
    /// Use ``text`` to send it.
    public var description: String { "StreamTicket(…)" }

    private static func digits(_ value: UInt64) -> String {
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    private static func hex(_ bytes: ArraySlice<UInt8>) -> UInt64? {
        var value: UInt64 = 0
        for byte in bytes {
            let digit: UInt8
            switch byte {
            case 48...57: digit = byte - 48
            case 97...102: digit = byte - 87
            case 65...70: digit = byte - 55
            default: return nil
            }
            value = value << 4 | UInt64(digit)
        }
        return value
    }
}
