import Foundation
import EventStreamKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `EventStreamDemo listen <url> [options]`: see ``ListenOptions/usage``.
struct ListenOptions {
    static let usage = """
        usage: EventStreamDemo listen <url> [-H|--header 'Name: value']... [--sensitive-header NAME]...
                                     [--last-event-id ID] [--method METHOD] [--data TEXT | --data-file PATH]
                                     [--connect-timeout SECONDS] [--read-timeout SECONDS] [--max-attempts N]
                                     [--transport builtin|foundation]
          Prints each event of the stream as a JSON line {"type","data","id"} on standard output,
          and one line per failed attempt on standard error. Reconnects as a browser does.
          --sensitive-header NAME names a header whose value is a credential: it is never sent after a redirect
          to another origin (nor are Authorization, Cookie and Proxy-Authorization).
          --data and --data-file send a body (the method becomes POST unless --method says otherwise).
          --connect-timeout (default 30) and --read-timeout (default 300) take seconds; 0 turns one off.
          --max-attempts N gives up after N failed attempts in a row (default: never).
          --transport foundation (Apple platforms) uses URLSession for every URL; builtin (the default)
          serves http, and https on Linux with the system's OpenSSL (SSL_CERT_FILE names other trusted CAs).
          Exit status: 0 when the server answers 204, 1 on a fatal failure, 2 on a usage error.
        """

    var url = ""
    var headers = HeaderFields()
    var sensitiveHeaders: Set<String> = []
    var lastEventID = ""
    var method: String?
    var body: [UInt8]?
    var connectTimeout: Duration? = .seconds(30)
    var readTimeout: Duration? = .seconds(300)
    var maxAttempts: Int?
    var transport = EventSource.Transport.automatic
    var showsHelp = false

    init(parsing arguments: [String]) throws {
        var remaining = arguments[...]
        func value(for flag: String) throws -> String {
            guard let value = remaining.popFirst() else { throw ServeOptions.UsageError(description: "\(flag) needs a value") }
            return value
        }
        func seconds(for flag: String) throws -> Duration? {
            let text = try value(for: flag)
            guard let seconds = Double(text), seconds.isFinite, seconds >= 0, seconds <= 86_400 else {
                throw ServeOptions.UsageError(description: "\(flag) takes seconds (0 for none), not \(text)")
            }
            return seconds == 0 ? nil : .milliseconds(Int64(seconds * 1000))
        }
        while let argument = remaining.popFirst() {
            switch argument {
            case "--help", "-h":
                showsHelp = true
                return
            case "--header", "-H":
                let field = try value(for: argument)
                let parts = field.split(separator: ":", maxSplits: 1)
                guard parts.count == 2 else { throw ServeOptions.UsageError(description: "a header is 'Name: value', not \(field.debugDescription)") }
                headers.add(String(parts[0]).trimmingSpaces, String(parts[1]).trimmingSpaces)
            case "--sensitive-header":
                let name = try value(for: argument)
                guard !name.isEmpty, !name.contains(where: { $0 == ":" || $0.isWhitespace }) else {
                    throw ServeOptions.UsageError(description: "--sensitive-header takes a header name, not \(name.debugDescription)")
                }
                sensitiveHeaders.insert(name)
            case "--last-event-id":
                lastEventID = try value(for: argument)
            case "--method", "-X":
                method = try value(for: argument)
            case "--data", "-d":
                guard body == nil else { throw ServeOptions.UsageError(description: "give one of --data and --data-file, once") }
                body = Array(try value(for: argument).utf8)
            case "--data-file":
                guard body == nil else { throw ServeOptions.UsageError(description: "give one of --data and --data-file, once") }
                let path = try value(for: argument)
                guard let data = FileManager.default.contents(atPath: path) else { throw ServeOptions.UsageError(description: "cannot read --data-file \(path)") }
                body = Array(data)
            case "--connect-timeout":
                connectTimeout = try seconds(for: argument)
            case "--read-timeout":
                readTimeout = try seconds(for: argument)
            case "--max-attempts":
                let text = try value(for: argument)
                guard let count = Int(text), count >= 1 else { throw ServeOptions.UsageError(description: "--max-attempts takes a count of at least 1, not \(text)") }
                maxAttempts = count
            case "--transport":
                switch try value(for: argument) {
                case "builtin": transport = .automatic
                #if canImport(Darwin)
                case "foundation": transport = .foundation
                #else
                case "foundation": throw ServeOptions.UsageError(description: "--transport foundation exists on Apple platforms only: on Linux the built-in client serves http and https")
                #endif
                case let other: throw ServeOptions.UsageError(description: "--transport is builtin or foundation, not \(other)")
                }
            default:
                guard url.isEmpty, !argument.hasPrefix("-") else { throw ServeOptions.UsageError(description: "unexpected argument \(argument)") }
                url = argument
            }
        }
        guard !url.isEmpty else { throw ServeOptions.UsageError(description: Self.usage) }
    }

    /// The request and configuration these options describe.
    func source() throws -> EventSource {
        guard let parsed = URL(string: url) else { throw ServeOptions.UsageError(description: "\(url.debugDescription) is not a URL") }
        let request = EventSource.Request(url: parsed, method: method ?? (body == nil ? "GET" : "POST"), headers: headers, body: body)
        var configuration = EventSource.Configuration()
        configuration.connectTimeout = connectTimeout
        configuration.readTimeout = readTimeout
        configuration.maxReconnectAttempts = maxAttempts.map { $0 - 1 }
        configuration.transport = transport
        configuration.sensitiveHeaders = sensitiveHeaders
        return try EventSource(request: request, lastEventID: lastEventID, configuration: configuration)
    }
}

/// Prints one JSON object per event, one per line, each written at once, and one line on
/// standard error per failed attempt; returns the exit status: 0 when the server answers
/// 204, 1 on a fatal failure (said on standard error).
nonisolated func listen(_ options: ListenOptions) async -> Int32 {
    do {
        let source = try options.source()
        let changes = source.stateChanges  // subscribed before the first attempt
        let reporter = Task {
            var attempt = 0
            for await change in changes {
                switch change {
                case .connecting(let number): attempt = number
                case .retrying(let delay, let failure):
                    printError("EventStreamDemo listen: attempt \(attempt) failed: \(oneLine(failure.description)); retrying in \(seconds(delay)) s")
                case .open, .closed: break
                }
            }
        }
        defer { reporter.cancel() }
        for try await event in source {
            writeOut("{\"type\":\(jsonString(event.type)),\"data\":\(jsonString(event.data)),\"id\":\(jsonString(event.lastEventID))}\n")
        }
        await reporter.value
        return 0
    } catch {
        printError("EventStreamDemo listen: \(oneLine("\(error)"))")
        return 1
    }
}

/// Text from the network, made safe for one terminal line: control characters escaped.
func oneLine(_ text: String) -> String {
    var result = ""
    for scalar in text.unicodeScalars.prefix(500) {
        // C0, DEL, C1, and the invisible controls that move or reorder text on a terminal or
        // in a log viewer (line and paragraph separators, bidirectional marks and overrides).
        let value = scalar.value
        if value < 0x20 || value == 0x7F || (0x80..<0xA0).contains(value) || (0x200B...0x200F).contains(value)
            || (0x2028...0x202E).contains(value) || (0x2060...0x2069).contains(value) || value == 0xFEFF {
            result += "\\u{\(String(scalar.value, radix: 16))}"
        } else {
            result.unicodeScalars.append(scalar)
        }
    }
    return result
}

private func seconds(_ duration: Duration) -> String {
    let (whole, fraction) = duration.components
    let milliseconds = Int(min(whole, 1_000_000_000)) * 1000 + Int(fraction / 1_000_000_000_000_000)
    return milliseconds % 1000 == 0 ? "\(milliseconds / 1000)" : String(format: "%.3g", Double(milliseconds) / 1000)
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
