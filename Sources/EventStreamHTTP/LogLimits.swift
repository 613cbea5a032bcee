import EventStreamKit

/// How much a log writer holds and lets through: the bound of its queue in bytes, and the
/// rate each level may log at.
struct LogLimits: Sendable, Equatable {
    /// The most bytes waiting to be written, the batch being written included. A line that
    /// does not fit is dropped and counted. Default: 256 KiB.
    var byteLimit = 256 * 1024
    /// The rate of each level's token bucket, or `nil` for no rate limit. Default:
    /// ``LogRate/standard``.
    var rate: LogRate? = .standard
    /// How long suppressed lines are counted before one line reports them. Default: 1 s.
    var summaryInterval: Duration = .seconds(1)

    /// The limits of the standard output and standard error writers.
    static let standard = LogLimits()
}

/// A token bucket's rate: `linesPerSecond` on average, up to `burst` at once.
struct LogRate: Sendable, Equatable {
    var linesPerSecond: Double
    var burst: Double

    /// 100 lines a second, bursts of 200: far more than a person reads, far less than a
    /// flood of refused requests would produce.
    static let standard = LogRate(linesPerSecond: 100, burst: 200)
}
