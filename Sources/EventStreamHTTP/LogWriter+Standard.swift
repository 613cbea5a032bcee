#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import EventStreamKit

/// The standard streams' writers that exist, for the flush at exit.
private let standardWriters = Mutex<[Int32: LogWriter]>([:])

/// The writers of standard output and standard error, created on first use, each shared by
/// every logger of the process: a thousand servers start one thread per stream, not a
/// thousand.
extension LogWriter {
    /// The writer of standard output (descriptor 1), created on first use.
    static let standardOutput = registered(LogWriter(descriptor: 1))

    /// The writer of standard error (descriptor 2), created on first use.
    static let standardError = registered(LogWriter(descriptor: 2))

    /// Waits until the standard streams' writers that exist have written every line queued
    /// before the call, for at most `timeout` in all.
    ///
    /// - Returns: `false` if the timeout passed first.
    static func flushStandard(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        let writers = standardWriters.withLock { $0.sorted { $0.key < $1.key }.map(\.value) }
        return writers.reduce(true) { flushed, writer in
            writer.flush(timeout: deadline - ContinuousClock.now) && flushed
        }
    }

    /// Adds `writer` to those flushed at exit and by ``flushStandard(timeout:)``.
    private static func registered(_ writer: LogWriter) -> LogWriter {
        let isFirst = standardWriters.withLock { writers in
            writers[writer.descriptor] = writer
            return writers.count == 1
        }
        if isFirst {
            // As stdio flushes its buffers at exit: a line logged just before `exit` (or the
            // end of `main`) is written, unless the destination is stuck for a second.
            // Threads still run while exit handlers do.
            atexit { _ = LogWriter.flushStandard(timeout: .seconds(1)) }
        }
        return writer
    }
}
