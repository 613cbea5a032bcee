import Foundation
import OpenAPIRuntime
import Synchronization
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A `GET` whose response body arrives as an `HTTPBody`, chunk by chunk as the socket delivers
/// it: Foundation's `URLSession` with a data delegate, which streams on Linux too (where
/// `URLSession.bytes(for:)` does not exist). The body is what a generated OpenAPI client
/// would hand to `asDecodedServerSentEvents()`: the payload bytes, with HTTP framing removed.
///
/// An event stream from `HTTPServer` is delimited by the connection's close (no
/// `Content-Length`, no chunked encoding), which `URLSession` reads to the end.
final class StreamingGet: NSObject, URLSessionDataDelegate, Sendable {
    let body: HTTPBody
    private let chunks: AsyncThrowingStream<ArraySlice<UInt8>, any Error>.Continuation
    private let state = Mutex(State())

    private struct State {
        var task: URLSessionDataTask?
        var response: Result<HTTPURLResponse, any Error>?
        var responseWaiter: CheckedContinuation<HTTPURLResponse, any Error>?
        var received: [UInt8] = []
    }

    /// Starts the request; the response head is `response()`, the payload `body`.
    init(_ url: URL, headers: [String: String] = [:]) {
        let (stream, continuation) = AsyncThrowingStream<ArraySlice<UInt8>, any Error>.makeStream()
        body = HTTPBody(stream, length: .unknown)
        chunks = continuation
        super.init()
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: 3600)
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 3600
        let session = URLSession(configuration: configuration, delegate: self, delegateQueue: nil)
        let task = session.dataTask(with: request)
        state.withLock { $0.task = task }
        task.resume()
        session.finishTasksAndInvalidate()  // the session lets go of its delegate when the task ends
    }

    /// The response head, once it has arrived.
    func response() async throws -> HTTPURLResponse {
        try await withCheckedThrowingContinuation { continuation in
            let ready = state.withLock { state in
                if state.response == nil { state.responseWaiter = continuation }
                return state.response
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    /// Every body byte received so far, as it came off the wire.
    var received: [UInt8] { state.withLock { $0.received } }

    /// Closes the connection; the body ends with an error if it had not ended yet.
    func cancel() {
        state.withLock { $0.task }?.cancel()
    }

    private func settleResponse(_ result: Result<HTTPURLResponse, any Error>) {
        let waiter = state.withLock { state -> CheckedContinuation<HTTPURLResponse, any Error>? in
            guard state.response == nil else { return nil }
            state.response = result
            defer { state.responseWaiter = nil }
            return state.responseWaiter
        }
        waiter?.resume(with: result)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse, completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        completionHandler(.allow)
        if let response = response as? HTTPURLResponse {
            settleResponse(.success(response))
        } else {
            settleResponse(.failure(URLError(.badServerResponse)))
        }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        let bytes = [UInt8](data)
        state.withLock { $0.received += bytes }
        chunks.yield(bytes[...])
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        settleResponse(.failure(error ?? URLError(.badServerResponse)))
        chunks.finish(throwing: error)
    }
}
