#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the HTTP server reports what it refused and why. A closure, so that any logging
/// library plugs in with one line.
///
/// Every message is escaped before it reaches the destination, custom closures included:
/// the bytes 0x00–0x1F and 0x7F, the C1 controls U+0080–U+009F and the separators U+2028
/// and U+2029 become `\n`, `\r`, `\t`, `\x1B`, `\u{85}`, `\u{2028}` and so on, so that
/// nothing a client sends (a path, a header) can end a log line and forge the next one.
public struct HTTPLogger: Sendable {
    /// How much a message matters.
    public enum Level: String, Sendable, Comparable {
        case debug, info, warning, error

        /// Whether `lhs` matters less than `rhs`.
        public static func < (lhs: Level, rhs: Level) -> Bool {
            lhs.index < rhs.index
        }

        /// The levels, least important first.
        static let ordered: [Level] = [.debug, .info, .warning, .error]

        /// The level's position in ``ordered``.
        var index: Int {
            switch self {
            case .debug: 0
            case .info: 1
            case .warning: 2
            case .error: 3
            }
        }
    }

    private let body: @Sendable (Level, String) -> Void

    /// A logger that hands each message to `body`.
    public init(_ body: @escaping @Sendable (Level, String) -> Void) {
        self.body = body
    }

    /// Writes messages at `minimum` level and above to standard error, one line each.
    public static func standardError(minimum: Level = .info) -> HTTPLogger {
        HTTPLogger { level, message in
            guard level >= minimum else { return }
            let line = "[EventStreamKit] \(level.rawValue): \(message)\n"
            // One write(2) per line, to file descriptor 2: lines from several tasks never interleave.
            _ = Array(line.utf8).withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        }
    }

    /// Discards everything.
    public static let silent = HTTPLogger { _, _ in }

    func callAsFunction(_ level: Level, _ message: @autoclosure () -> String) {
        body(level, Self.escapingControlCharacters(message()))
    }
}
