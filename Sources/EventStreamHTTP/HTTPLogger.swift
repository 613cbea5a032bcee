import EventStreamKit

/// Where the HTTP server reports what it refused and why. A closure, so that any logging
/// library plugs in with one line.
///
/// ```swift
/// var configuration = HTTPServer.Configuration(host: "127.0.0.1", port: 8080)
/// configuration.logger = .standardOutput(minimum: .warning)
/// // or: configuration.logger = HTTPLogger { level, message in myLogger.log(level, message) }
/// ```
///
/// Every message is escaped before it reaches the destination, custom closures included:
/// the bytes 0x00–0x1F and 0x7F, the C1 controls U+0080–U+009F and the separators U+2028
/// and U+2029 become `\n`, `\r`, `\t`, `\x1B`, `\u{85}`, `\u{2028}` and so on, so that
/// nothing a client sends (a path, a header) can end a log line and forge the next one.
///
/// ``standardError(minimum:format:)`` and ``standardOutput(minimum:format:)`` never block
/// the task that logs. Each stream has one writer thread for the whole process, the only
/// one that waits for the stream, fed by a queue:
///
/// - The queue holds at most 256 KiB, the lines being written included. A line that does
///   not fit is dropped; once the writer has caught up it writes one line saying how many
///   were dropped.
/// - Each level may log 100 lines a second, in bursts of up to 200 (a token bucket per
///   level and stream). Lines over that are suppressed; one line a second says how many.
/// - Lines are written as soon as the writer is woken, not on a timer.
/// - At exit the process waits up to a second for what is queued to be written (see
///   ``flushStandardStreams(timeout:)``).
///
/// - Warning: A closure passed to ``init(_:)`` is called synchronously, on the task that
///   serves the request. It must not block: hand the message to something that queues
///   it, as the standard loggers do.
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

    /// How a standard stream's logger writes a message: as a tagged line, or as it is.
    public struct LineFormat: Sendable, Equatable {
        private enum Kind {
            case tagged, bare
        }

        private let kind: Kind

        /// `[EventStreamKit] <level>: <message>`, one line each.
        public static let tagged = LineFormat(kind: .tagged)
        /// `<message>`, one line each: for a program's own output.
        public static let bare = LineFormat(kind: .bare)

        func line(_ level: Level, _ message: String) -> String {
            switch kind {
            case .tagged: "[EventStreamKit] \(level.rawValue): \(message)\n"
            case .bare: message + "\n"
            }
        }
    }

    private let minimum: Level
    private let body: @Sendable (Level, String) -> Void

    /// A logger that hands each message, escaped, to `body`.
    ///
    /// - Parameter body: Called synchronously with each message's level and text, from
    ///   whichever task logs; it must not block.
    public init(_ body: @escaping @Sendable (Level, String) -> Void) {
        self.init(minimum: .debug, body)
    }

    private init(minimum: Level, _ body: @escaping @Sendable (Level, String) -> Void) {
        self.minimum = minimum
        self.body = body
    }

    /// Writes messages at `minimum` level and above to standard error, without blocking
    /// (see ``HTTPLogger``).
    ///
    /// - Parameters:
    ///   - minimum: Messages below this level are ignored, and not even built.
    ///   - format: Tagged lines (the default) or the bare messages.
    public static func standardError(minimum: Level = .info, format: LineFormat = .tagged) -> HTTPLogger {
        writing(minimum: minimum, format: format) { LogWriter.standardError }
    }

    /// Writes messages at `minimum` level and above to standard output, without blocking
    /// (see ``HTTPLogger``).
    ///
    /// ```swift
    /// let output = HTTPLogger.standardOutput(format: .bare)
    /// output(.info, "serving http://127.0.0.1:\(server.port)/")
    /// ```
    ///
    /// - Parameters:
    ///   - minimum: Messages below this level are ignored, and not even built.
    ///   - format: Tagged lines (the default) or the bare messages.
    public static func standardOutput(minimum: Level = .info, format: LineFormat = .tagged) -> HTTPLogger {
        writing(minimum: minimum, format: format) { LogWriter.standardOutput }
    }

    /// A logger that queues its lines on `writer`, never blocking: for any descriptor.
    static func writing(to writer: LogWriter, minimum: Level = .info, format: LineFormat = .tagged) -> HTTPLogger {
        writing(minimum: minimum, format: format) { writer }
    }

    /// `writer` is asked for on each message, so that a standard stream's writer (and its
    /// thread) exists only once something is logged to it.
    private static func writing(minimum: Level, format: LineFormat, _ writer: @escaping @Sendable () -> LogWriter) -> HTTPLogger {
        HTTPLogger(minimum: minimum) { level, message in
            writer().enqueue(format.line(level, message), level: level)
        }
    }

    /// Waits until the lines queued so far for standard output and standard error have
    /// been written, for at most `timeout`. Blocks the calling thread.
    ///
    /// The process does this by itself at exit, for up to a second; call it where a line
    /// must be out before something else happens (a signal to a parent, say).
    ///
    /// - Parameter timeout: The longest wait, for both streams together. Default: 1 s.
    /// - Returns: `false` if a stream did not drain in time (a pipe nobody reads).
    @discardableResult
    public static func flushStandardStreams(timeout: Duration = .seconds(1)) -> Bool {
        LogWriter.flushStandard(timeout: timeout)
    }

    /// Discards everything.
    public static let silent = HTTPLogger { _, _ in }

    /// Logs `message` at `level`: escapes it and hands it to the destination, unless the
    /// level is below the logger's minimum.
    ///
    /// - Parameters:
    ///   - level: How much the message matters.
    ///   - message: The text, built only if the level is logged.
    public func callAsFunction(_ level: Level, _ message: @autoclosure () -> String) {
        guard level >= minimum else { return }
        body(level, Self.truncated(Self.escapingControlCharacters(message())))
    }
}
