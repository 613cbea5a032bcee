/// Decodes a `Transfer-Encoding: chunked` body (RFC 9112 §7.1) incrementally: bytes in, body
/// bytes out, for any split of the input. Pure, so it is tested with every chunking.
///
/// Chunk extensions and trailer fields are skipped (each bounded); a bare LF is accepted
/// where CRLF belongs. After the last chunk, ``isComplete`` is true and further input is
/// ignored.
struct ChunkedBodyDecoder {
    private enum State: Equatable {
        case size(digits: Int)
        case sizeExtension
        case sizeLF
        case data
        case dataCR
        case dataLF
        /// Inside the trailer section: at the start of a line, or within one.
        case trailer(atLineStart: Bool)
        case trailerLF(lineWasEmpty: Bool)
        case complete
    }

    private static let maxSizeDigits = 15
    private static let maxSkipped = 8 * 1024

    private var state = State.size(digits: 0)
    private var remaining = 0
    private var skipped = 0

    /// Whether the last (zero-size) chunk and the trailer have been read.
    var isComplete: Bool { state == .complete }

    /// Appends the body bytes in `input` to `output`.
    ///
    /// - Throws: ``EventSourceError`` (invalid response) for malformed framing.
    mutating func decode(_ input: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(EventSourceError) {
        var index = 0
        while index < input.count {
            let byte = input[index]
            switch state {
            case .size(let digits):
                if let value = Self.hexValue(byte) {
                    guard digits < Self.maxSizeDigits else { throw .invalidResponse("chunk size too large") }
                    remaining = remaining << 4 | value
                    state = .size(digits: digits + 1)
                } else if digits == 0 {
                    throw .invalidResponse("chunk size missing")
                } else if byte == 59 || byte == 32 || byte == 9 {  // ';' starts an extension; spaces may precede it
                    skipped = 0
                    state = .sizeExtension
                } else if byte == 13 {
                    state = .sizeLF
                } else if byte == 10 {
                    endOfSizeLine()
                } else {
                    throw .invalidResponse("malformed chunk size")
                }
                index += 1
            case .sizeExtension:
                if byte == 10 {
                    endOfSizeLine()
                } else if byte == 13 {
                    state = .sizeLF
                } else {
                    skipped += 1
                    guard skipped <= Self.maxSkipped else { throw .invalidResponse("chunk extension too long") }
                }
                index += 1
            case .sizeLF:
                guard byte == 10 else { throw .invalidResponse("CR without LF after a chunk size") }
                endOfSizeLine()
                index += 1
            case .data:
                let take = min(remaining, input.count - index)
                output.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[index..<(index + take)]))
                remaining -= take
                index += take
                if remaining == 0 { state = .dataCR }
            case .dataCR:
                if byte == 13 {
                    state = .dataLF
                } else if byte == 10 {
                    state = .size(digits: 0)
                } else {
                    throw .invalidResponse("chunk data longer than its size")
                }
                index += 1
            case .dataLF:
                guard byte == 10 else { throw .invalidResponse("CR without LF after chunk data") }
                state = .size(digits: 0)
                index += 1
            case .trailer(let atLineStart):
                if byte == 13 {
                    state = .trailerLF(lineWasEmpty: atLineStart)
                } else if byte == 10 {
                    endOfTrailerLine(wasEmpty: atLineStart)
                } else {
                    skipped += 1
                    guard skipped <= Self.maxSkipped else { throw .invalidResponse("chunked trailer too long") }
                    state = .trailer(atLineStart: false)
                }
                index += 1
            case .trailerLF(let lineWasEmpty):
                guard byte == 10 else { throw .invalidResponse("CR without LF in the chunked trailer") }
                endOfTrailerLine(wasEmpty: lineWasEmpty)
                index += 1
            case .complete:
                return
            }
        }
    }

    private mutating func endOfSizeLine() {
        if remaining == 0 {
            skipped = 0
            state = .trailer(atLineStart: true)
        } else {
            state = .data
        }
    }

    private mutating func endOfTrailerLine(wasEmpty: Bool) {
        state = wasEmpty ? .complete : .trailer(atLineStart: true)
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 48...57: Int(byte - 48)
        case 65...70: Int(byte - 55)
        case 97...102: Int(byte - 87)
        default: nil
        }
    }
}
