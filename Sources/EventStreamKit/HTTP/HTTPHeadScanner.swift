/// Finds the lines of an HTTP/1.x head (a request's or a response's) in the bytes read so
/// far, enforcing the size and field-count limits as soon as the bytes show them.
enum HTTPHeadScanner {
    enum Outcome {
        /// More bytes are needed.
        case incomplete
        /// The lines before the empty line (without their line ends), and the bytes used.
        case complete(lines: [Range<Int>], consumed: Int)
    }

    /// Scans from `start`; lines end in CRLF or a bare LF.
    ///
    /// - Parameter kind: `"request"` or `"response"`, for the error message.
    /// - Throws: ``HTTPParseError`` 431 if the head is over `limits`.
    static func scan(_ buffer: UnsafeBufferPointer<UInt8>, from start: Int, limits: HTTPRequestHeadParser.Limits, kind: String) throws(HTTPParseError) -> Outcome {
        var lines: [Range<Int>] = []
        var lineStart = start
        var index = start
        while true {
            guard index < buffer.count else {
                if buffer.count - start > limits.maxHeadSize {
                    throw .init(.requestHeaderFieldsTooLarge, "\(kind) head larger than \(limits.maxHeadSize) bytes")
                }
                return .incomplete
            }
            if buffer[index] != 10 {
                index += 1
                continue
            }
            let lineEnd = index > lineStart && buffer[index - 1] == 13 ? index - 1 : index
            index += 1
            if index - start > limits.maxHeadSize {
                throw .init(.requestHeaderFieldsTooLarge, "\(kind) head larger than \(limits.maxHeadSize) bytes")
            }
            if lineEnd == lineStart { return .complete(lines: lines, consumed: index) }  // the empty line ends the head
            lines.append(lineStart..<lineEnd)
            if lines.count - 1 > limits.maxHeaderCount {
                throw .init(.requestHeaderFieldsTooLarge, "more than \(limits.maxHeaderCount) header fields")
            }
            lineStart = index
        }
    }
}
