import EventStreamKit

extension HTTPLogger {
    /// The longest message passed on, in UTF-8 bytes after escaping: the rate limit counts
    /// lines, so without it one client could make each line 8 KiB of its own request data.
    static let maxMessageBytes = 2048

    /// `message` cut to ``maxMessageBytes`` at a character boundary, saying how much was cut.
    static func truncated(_ message: String) -> String {
        let count = message.utf8.count
        guard count > maxMessageBytes else { return message }
        var kept = ""
        var bytes = 0
        for scalar in message.unicodeScalars {
            let size = String(scalar).utf8.count
            guard bytes + size <= maxMessageBytes else { break }
            kept.unicodeScalars.append(scalar)
            bytes += size
        }
        return kept + "... (\(count - bytes) more bytes)"
    }

    /// `message` with every character that could end a log line or steer a terminal made
    /// visible: 0x00–0x1F and 0x7F as `\n`, `\r`, `\t` or `\xHH`; U+0080–U+009F, U+2028,
    /// U+2029 and the bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069,
    /// which reorder what a terminal shows) as `\u{H}`. Anything else, other Unicode
    /// included, is left as it is.
    ///
    /// The UTF-8 is scanned first, and a message with nothing to escape is returned as it
    /// came, without a copy.
    static func escapingControlCharacters(_ message: String) -> String {
        guard message.utf8.withContiguousStorageIfAvailable(Self.needsEscaping) ?? true else { return message }
        var escaped = ""
        escaped.reserveCapacity(message.utf8.count + 16)
        for scalar in message.unicodeScalars {
            switch scalar.value {
            case 0x0A: escaped += "\\n"
            case 0x0D: escaped += "\\r"
            case 0x09: escaped += "\\t"
            case 0x00...0x0F: escaped += "\\x0" + String(scalar.value, radix: 16, uppercase: true)
            case 0x10...0x1F, 0x7F: escaped += "\\x" + String(scalar.value, radix: 16, uppercase: true)
            case 0x80...0x9F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069: escaped += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    /// Whether the UTF-8 `bytes` hold a character that ``escapingControlCharacters(_:)``
    /// escapes: a byte below 0x20 or 0x7F, C2 80–C2 9F (the C1 controls), E2 80 A8–AE
    /// (U+2028, U+2029, U+202A–U+202E) or E2 81 A6–A9 (U+2066–U+2069).
    static func needsEscaping(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case 0x00..<0x20, 0x7F:
                return true
            case 0xC2 where index + 1 < bytes.count && bytes[index + 1] <= 0x9F:
                return true
            case 0xE2 where index + 2 < bytes.count && bytes[index + 1] == 0x80 && (0xA8...0xAE).contains(bytes[index + 2]):
                return true
            case 0xE2 where index + 2 < bytes.count && bytes[index + 1] == 0x81 && (0xA6...0xA9).contains(bytes[index + 2]):
                return true
            default:
                index += 1
            }
        }
        return false
    }
}
