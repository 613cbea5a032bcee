import EventStreamKit
import InteropSupport
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Check 2: EventStreamKit's `EventSource` reads an OpenAI-style `POST` stream from
/// `chat_server.py` (Python's standard library), and a request marked not retryable is never
/// sent twice, whatever way the connection ends.
///
/// Usage: `ChatCompletionsClient http://127.0.0.1:PORT` (the server's URL). Prints what it
/// checked and `N passed, N failed`; exits 1 on any failure.
@main
struct ChatCompletionsClient {
    /// What `chat_server.py`'s PIECES join to.
    static let expectedText = "Hello, wörld 👋\n\"quoted\" \\ back\\slash 日本語\u{2028}!"

    static func main() async {
        guard CommandLine.arguments.count == 2, let server = URL(string: CommandLine.arguments[1]) else {
            print("usage: ChatCompletionsClient http://127.0.0.1:PORT")
            exit(2)
        }
        let started = ContinuousClock.now
        var passed = 0
        var failed = 0
        for check in checks {
            do {
                let detail = try await withTimeout(.seconds(30)) { try await check.run(server) }
                print("ok   \(check.name): \(detail)")
                passed += 1
            } catch {
                print("FAIL \(check.name): \(error)")
                failed += 1
            }
        }
        print("== \(ContinuousClock.now - started) in all")
        print("\(passed) passed, \(failed) failed")
        exit(failed == 0 ? 0 : 1)
    }

    struct Check: Sendable {
        let name: String
        let run: @Sendable (URL) async throws -> String
    }

    static let checks = [
        Check(name: "a streamed completion, read to [DONE]") { server in
            let before = try await serverStats(server)
            let (text, sawDone) = try await complete(server, model: "m")
            guard sawDone else { throw Failure("the stream ended without [DONE]") }
            guard text == expectedText else { throw Failure("content \(text.debugDescription), expected \(expectedText.debugDescription)") }
            let after = try await serverStats(server)
            let sent = after.requests["m", default: 0] - before.requests["m", default: 0]
            guard sent == 1 else { throw Failure("the server got \(sent) requests for it, not 1") }
            let refused = after.refused.dropFirst(before.refused.count)
            guard refused.isEmpty else { throw Failure("the server refused: \(Array(refused))") }
            let framing = after.framing.dropFirst(before.framing.count)
            return "\(text.debugDescription); the server found method, Content-Type, Accept, Authorization and body as required (body framed by \(framing.joined(separator: ", ")))"
        },
        Check(name: "a wrong API key is a fatal 401, not retried") { server in
            let before = try await serverStats(server).requests["unauthorized", default: 0]
            do {
                _ = try await complete(server, model: "unauthorized", key: "wrong-key")
                throw Failure("no error")
            } catch let error as EventSourceError where error.code == .badStatus && error.status == 401 {
                try await Task.sleep(for: .seconds(1))
                let sent = try await serverStats(server).requests["unauthorized", default: 0] - before
                guard sent == 1 else { throw Failure("sent \(sent) times") }
                return "badStatus 401, sent once"
            }
        },
        Check(name: "a close in the middle of a chunk, not retryable: sent once") { server in
            try await droppedOnce(server, model: "drop-chunked")
        },
        Check(name: "a clean close before [DONE], not retryable: sent once") { server in
            try await droppedOnce(server, model: "drop-close")
        },
        Check(name: "control: the same close, retryable: sent again") { server in
            // Shows that the count above would catch a second POST.
            let before = try await serverStats(server).requests["drop-close", default: 0]
            let source = try EventSource(request: request(server, model: "drop-close", retryable: true))
            var contents: [String] = []
            for try await event in source {
                if let content = try delta(event) { contents.append(content) }
                if contents.count == 4 { break }  // "" and "partial", twice
            }
            let sent = try await serverStats(server).requests["drop-close", default: 0] - before
            guard sent == 2 else { throw Failure("the server got \(sent) POSTs for it, expected 2") }
            return "reconnected and POSTed again, as a retryable request should"
        },
    ]

    static func request(_ server: URL, model: String, key: String = "test-key", retryable: Bool = false) -> EventSource.Request {
        var request = EventSource.Request(url: server.appendingPathComponent("v1/chat/completions"))
        request.method = "POST"
        request.headers = ["Content-Type": "application/json", "Authorization": "Bearer \(key)"]
        request.body = Array(#"{"model":"\#(model)","stream":true,"messages":[{"role":"user","content":"Say hello"}]}"#.utf8)
        request.isRetryable = retryable  // an LLM request must not be sent twice
        return request
    }

    /// Sends the completion request and joins the content deltas until `[DONE]` or the end.
    static func complete(_ server: URL, model: String, key: String = "test-key") async throws -> (text: String, sawDone: Bool) {
        let source = try EventSource(request: request(server, model: model, key: key))
        var text = ""
        for try await event in source {
            if event.data == "[DONE]" { return (text, true) }
            text += try delta(event) ?? ""
        }
        return (text, false)
    }

    /// A stream that ends before `[DONE]`: either the sequence ends or it throws; either way
    /// the POST must have gone out once, also after the reconnection time has passed.
    static func droppedOnce(_ server: URL, model: String) async throws -> String {
        let before = try await serverStats(server).requests[model, default: 0]
        let outcome: String
        var contents: [String] = []
        do {
            let source = try EventSource(request: request(server, model: model))
            for try await event in source {
                if event.data == "[DONE]" { throw Failure("[DONE] in a stream that should break off") }
                if let content = try delta(event) { contents.append(content) }
            }
            outcome = "the sequence ended"
        } catch let error as Failure {
            throw error
        } catch {
            outcome = "it threw \(error)"
        }
        guard contents == ["", "partial"] else { throw Failure("read \(contents), expected the two events before the break") }
        // The server said `retry: 100`; the client's floor is 0.5 s. A retry would be in by now.
        try await Task.sleep(for: .seconds(2))
        let sent = try await serverStats(server).requests[model, default: 0] - before
        guard sent == 1 else { throw Failure("\(outcome), and the POST was sent \(sent) times") }
        return "\(outcome) after the 2 events; POST sent once (2 s later)"
    }

    struct Completion: Decodable {
        struct Choice: Decodable {
            struct Delta: Decodable { var content: String? }
            var delta: Delta
        }
        var choices: [Choice]
    }

    static func delta(_ event: MessageEvent) throws -> String? {
        try JSONDecoder().decode(Completion.self, from: Data(event.data.utf8)).choices.first?.delta.content
    }

    struct Stats: Decodable {
        struct Refusal: Decodable, CustomStringConvertible {
            var status: Int
            var reason: String
            var description: String { "\(status) \(reason)" }
        }
        var requests: [String: Int]
        var refused: [Refusal]
        var framing: [String]
    }

    static func serverStats(_ server: URL) async throws -> Stats {
        let (data, _) = try await URLSession.shared.data(from: server.appendingPathComponent("stats"))
        return try JSONDecoder().decode(Stats.self, from: data)
    }
}

