import EventStreamKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `EventStreamDemo listen <url> [--header 'K: V']... [--last-event-id ID]`.
struct ListenOptions {
    var url = ""
    var headers = HTTPHeaders()
    var lastEventID = ""

    init(parsing arguments: [String]) throws {
        var remaining = arguments[...]
        while let argument = remaining.popFirst() {
            switch argument {
            case "--header", "-H":
                guard let field = remaining.popFirst() else { throw ServeOptions.UsageError(description: "\(argument) needs 'Name: value'") }
                let parts = field.split(separator: ":", maxSplits: 1)
                guard parts.count == 2 else { throw ServeOptions.UsageError(description: "a header is 'Name: value', not \(field.debugDescription)") }
                headers.add(String(parts[0]).trimmingSpaces, String(parts[1]).trimmingSpaces)
            case "--last-event-id":
                guard let id = remaining.popFirst() else { throw ServeOptions.UsageError(description: "--last-event-id needs a value") }
                lastEventID = id
            default:
                guard url.isEmpty, !argument.hasPrefix("-") else { throw ServeOptions.UsageError(description: "unexpected argument \(argument)") }
                url = argument
            }
        }
        guard !url.isEmpty else { throw ServeOptions.UsageError(description: "usage: EventStreamDemo listen <url> [--header 'K: V']... [--last-event-id ID]") }
    }
}

/// Prints one JSON object per event, one per line, each written at once; returns the exit
/// status: 0 when the server answers 204, 1 on a fatal failure (said on standard error).
nonisolated func listen(_ options: ListenOptions) async -> Int32 {
    do {
        let source = try EventSource(url: options.url, headers: options.headers, lastEventID: options.lastEventID)
        for try await event in source {
            writeOut("{\"type\":\(jsonString(event.type)),\"data\":\(jsonString(event.data)),\"id\":\(jsonString(event.lastEventID))}\n")
        }
        return 0
    } catch {
        printError("EventStreamDemo listen: \(error)")
        return 1
    }
}

/// Writes straight to standard output: no buffer to flush, so a reader sees each line now.
func writeOut(_ text: String) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let written = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
        if written < 0 {
            if errno == EINTR { continue }
            return
        }
        bytes = bytes.dropFirst(written)
    }
}

/// A JSON string literal (RFC 8259): quotes, backslashes and control characters escaped.
func jsonString(_ text: String) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case "\r": result += "\\r"
        case "\t": result += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result + "\""
}

extension String {
    var trimmingSpaces: String {
        var slice = Substring(self)
        while slice.first == " " || slice.first == "\t" { slice = slice.dropFirst() }
        while slice.last == " " || slice.last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
