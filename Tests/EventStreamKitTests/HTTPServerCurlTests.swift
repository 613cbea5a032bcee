@testable import EventStreamKit
@testable import EventStreamHTTP
import Foundation
import Testing

private let note = try! EventType<String>("note", marshal: .text)

private let curlPath = ["/usr/bin/curl", "/usr/local/bin/curl"].first { FileManager.default.isExecutableFile(atPath: $0) }

@Suite("HTTPServer with curl, a client we did not write")
struct HTTPServerCurlTests {
    @Test(.enabled(if: curlPath != nil, "curl is not installed (.ci/run installs it)"))
    func curlReadsAStream() async throws {
        let server = try TestServer.start()
        let curl = try ChildProcess(curlPath!, ["-N", "-s", "-i", "--max-time", "120", "http://127.0.0.1:\(server.port)/events?user=curl"])
        try await waitUntil("curl to connect") { await server.hub.clientCount == 1 }
        for i in 1...3 { try await server.hub.send("event \(i)", as: note) }
        // curl leaves when we close the stream; it has printed everything by then.
        try await waitUntil("the events to be written") { await server.hub.deliveries == 3 }
        await server.hub.close(source: "curl")
        try await waitUntil("curl to exit") { curl.isFinished }
        #expect(curl.termination == .exited(0))
        let text = String(decoding: curl.stdout, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200 OK"))
        #expect(text.contains("content-type: text/event-stream; charset=utf-8") || text.contains("Content-Type: text/event-stream; charset=utf-8"))
        for i in 1...3 { #expect(text.contains("event: note\ndata: event \(i)\n\n")) }
        await server.stop()
    }
}
