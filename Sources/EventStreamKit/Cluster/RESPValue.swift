/// A value of the Redis serialization protocol, version 2 (RESP2): what a Redis server
/// answers. Commands go out as arrays of bulk strings (``RESPValue/command(_:)``).
package enum RESPValue: Hashable, Sendable {
    /// `+OK`: a short string without CR or LF.
    case simpleString(String)
    /// `-ERR …`: the server refused the command; the text starts with an error code.
    case error(String)
    /// `:42`.
    case integer(Int64)
    /// `$5 hello`: binary-safe bytes; `nil` is the null bulk string (`$-1`).
    case bulkString([UInt8]?)
    /// `*2 …`: values in order; `nil` is the null array (`*-1`, e.g. `XREAD` that timed out).
    case array([RESPValue]?)

    /// A command as Redis reads it: an array of bulk strings.
    package static func command(_ arguments: [String]) -> [UInt8] {
        command(arguments.map { Array($0.utf8) })
    }

    /// A command as Redis reads it: an array of bulk strings.
    package static func command(_ arguments: [[UInt8]]) -> [UInt8] {
        var bytes = Array("*\(arguments.count)\r\n".utf8)
        for argument in arguments {
            bytes += Array("$\(argument.count)\r\n".utf8)
            bytes += argument
            bytes += [13, 10]
        }
        return bytes
    }

    /// The bytes of a bulk or simple string, else `nil`.
    package var bytes: [UInt8]? {
        switch self {
        case .bulkString(let bytes): bytes
        case .simpleString(let text): Array(text.utf8)
        default: nil
        }
    }

    /// The text of a bulk or simple string (invalid UTF-8 repaired), else `nil`.
    package var string: String? {
        bytes.map { String(decoding: $0, as: UTF8.self) }
    }

    /// The integer of an integer reply, or of a string holding one (Redis answers both).
    package var integer: Int64? {
        switch self {
        case .integer(let value): value
        default: string.flatMap { Int64($0) }
        }
    }

    /// The elements of a non-null array, else `nil`.
    package var elements: [RESPValue]? {
        if case .array(let elements?) = self { elements } else { nil }
    }
}
