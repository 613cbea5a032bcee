import Foundation
import Testing
@testable import EventStreamKit

/// `EventStreamDemo listen`, run as a subprocess against a scripted server.
@Suite("EventStreamDemo listen")
struct ListenCommandTests {
    static let noContent = ScriptedServer.Step.send("HTTP/1.1 204 No Content\r\n\r\n")

    @Test("prints each event as a JSON line at once, sends the headers, reconnects with Last-Event-ID, exits 0 on 204")
    func printsAndReconnects() async throws {
        try await withScriptedServer({ request in
            switch request.index {
            case 0: [.streamHead, .send("retry: 10\nid: 7\nevent: note\ndata: say \"hi\"\ndata: \\ bye\n\n"), .close]
            default: [Self.noContent]
            }
        }) { server in
            let demo = try DemoProcess(["listen", server.url, "--header", "Authorization: Bearer abc", "--last-event-id", "3"])
            defer { demo.terminate() }
            // The pipe may deliver the last bytes after the exit: wait for both.
            try await waitUntil("the demo to exit") { !demo.isRunning && !demo.stdoutLines.isEmpty }
            #expect(demo.status == 0, "stderr: \(demo.stderrText)")
            #expect(demo.stdoutLines == [#"{"type":"note","data":"say \"hi\"\n\\ bye","id":"7"}"#])
            let requests = server.requests
            #expect(requests.map { $0.header("Last-Event-ID") } == ["3", "7"])
            #expect(requests.first?.header("Authorization") == "Bearer abc")
            // Each line is valid JSON with the three fields.
            let object = try JSONSerialization.jsonObject(with: Data(demo.stdoutLines[0].utf8)) as? [String: String]
            #expect(object == ["type": "note", "data": "say \"hi\"\n\\ bye", "id": "7"])
        }
    }

    @Test("a line appears while the stream is still open: output is not buffered")
    func unbuffered() async throws {
        try await withScriptedServer({ _ in [.streamHead, .send("data: first\n\n"), .holdOpen] }) { server in
            let demo = try DemoProcess(["listen", server.url])
            defer { demo.terminate() }
            try await waitUntil("the first line") { demo.stdoutLines.count == 1 }
            #expect(demo.stdoutLines == [#"{"type":"message","data":"first","id":""}"#])
            #expect(demo.isRunning)
        }
    }

    @Test("a fatal status, a wrong content type and an invalid URL exit non-zero with one line on stderr")
    func fatal() async throws {
        for head in ["HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"] {
            try await withScriptedServer({ _ in [.send(head), .close] }) { server in
                let demo = try DemoProcess(["listen", server.url])
                defer { demo.terminate() }
                try await waitUntil("the demo to exit") { !demo.isRunning && demo.stderrText.hasSuffix("\n") }
                #expect(demo.status != 0)
                #expect(demo.stderrText.split(separator: "\n").count == 1, "stderr: \(demo.stderrText)")
                #expect(demo.stdoutLines.isEmpty)
            }
        }
        let invalid = try DemoProcess(["listen", "ftp://example.test/"])
        try await waitUntil("the demo to exit") { !invalid.isRunning && invalid.stderrText.hasSuffix("\n") }
        #expect(invalid.status != 0)
        #expect(invalid.stderrText.contains("http or https"))
    }

    @Test("each failed attempt is one stderr line saying what failed and when it retries; --max-attempts gives up with status 1")
    func failedAttemptsAreReported() async throws {
        try await withScriptedServer({ _ in [.holdOpen] }) { server in
            let demo = try DemoProcess(["listen", server.url, "--connect-timeout", "0.2", "--max-attempts", "3"])
            defer { demo.terminate() }
            try await waitUntil("the demo to give up", timeout: .seconds(20)) { !demo.isRunning && demo.stderrText.contains("gave up") }
            #expect(demo.status == 1)
            let lines = demo.stderrText.split(separator: "\n")
            #expect(lines.count == 3, "stderr: \(demo.stderrText)")
            #expect(lines.first?.contains("attempt 1 failed: no response within 0.2 s; retrying in 3 s") == true, "stderr: \(demo.stderrText)")
            #expect(server.requests.count == 3)
        }
    }

    /// Found by the attack run: `gave up after 1 failed attempt in a row`, and nothing on why.
    @Test("giving up names the last failure: a refused connection, a stream the server ended")
    func gaveUpSaysWhy() async throws {
        // A port nobody listens on: a server's, once it has stopped.
        let closedURL = try await withScriptedServer({ _ in [] }) { $0.url }
        let refused = try DemoProcess(["listen", closedURL, "--max-attempts", "1"])
        try await waitUntil("the demo to give up") { !refused.isRunning && refused.stderrText.hasSuffix("\n") }
        #expect(refused.stderrText == "EventStreamDemo listen: gave up after 1 failed attempt in a row: connect failed: Connection refused (errno 111)\n")
        try await withScriptedServer({ _ in [.streamHead, .close] }) { server in
            let demo = try DemoProcess(["listen", server.url, "--max-attempts", "1"])
            defer { demo.terminate() }
            try await waitUntil("the demo to give up") { !demo.isRunning && demo.stderrText.hasSuffix("\n") }
            #expect(demo.status == 1)
            #expect(demo.stderrText == "EventStreamDemo listen: gave up after 1 failed attempt in a row: the server ended the stream\n")
        }
    }

    @Test("--sensitive-header keeps a header from another origin after a redirect; without it the header goes along")
    func sensitiveHeader() async throws {
        for sensitive in [true, false] {
            try await withScriptedServer({ _ in [.streamHead, .send("data: elsewhere\n\n"), .holdOpen] }) { target in
                try await withScriptedServer({ _ in [.send("HTTP/1.1 307 Temporary Redirect\r\nLocation: \(target.url)\r\nContent-Length: 0\r\n\r\n"), .close] }) { origin in
                    let flags = sensitive ? ["--sensitive-header", "x-api-key"] : []
                    let demo = try DemoProcess(["listen", origin.url, "-H", "X-Api-Key: k", "-H", "X-Trace: 1"] + flags)
                    defer { demo.terminate() }
                    try await waitUntil("the event from the other origin") { demo.stdoutLines.count == 1 }
                    #expect(origin.requests.first?.header("X-Api-Key") == "k")
                    let forwarded = try #require(target.requests.first)
                    #expect(forwarded.header("X-Api-Key") == (sensitive ? nil : "k"), "stderr: \(demo.stderrText)")
                    #expect(forwarded.header("X-Trace") == "1")
                }
            }
        }
        let invalid = try DemoProcess(["listen", "http://127.0.0.1:1/", "--sensitive-header", "X-Api-Key:"])
        try await waitUntil("the demo to exit") { !invalid.isRunning && invalid.stderrText.hasSuffix("\n") }
        #expect(invalid.status == 2, "\(invalid.stderrText)")
    }

    @Test("--data sends a POST body with its length; --help answers on every subcommand")
    func postAndHelp() async throws {
        try await withScriptedServer({ _ in [.streamHead, .send("data: [DONE]\n\n"), .close] }) { server in
            let demo = try DemoProcess(["listen", server.url, "--data", #"{"q":1}"#, "-H", "Content-Type: application/json", "--max-attempts", "1"])
            defer { demo.terminate() }
            try await waitUntil("the first line") { demo.stdoutLines.count == 1 }
            #expect(server.requests.first?.method == "POST")
            #expect(server.requests.first?.body == Array(#"{"q":1}"#.utf8))
        }
        for arguments in [["listen", "--help"], ["serve", "--help"], ["--help"]] {
            let help = try DemoProcess(arguments)
            try await waitUntil("\(arguments) to exit") { !help.isRunning && help.stdoutText.contains("usage:") }
            #expect(help.status == 0, "\(arguments): \(help.stderrText)")
        }
    }
}
