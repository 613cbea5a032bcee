#if canImport(Darwin)
import Foundation
import Synchronization
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A response read through `URLSession` with a data delegate, for `https://` (or any URL,
/// with ``EventSource/Transport/foundation``). The delegate streams the body as it arrives,
/// also on Linux, where `URLSession.bytes(for:)` does not exist. Redirects come back as
/// responses, so that ``EventSourceStateMachine`` applies the same rules to both transports.
///
/// A bound, not backpressure: `URLSession` pushes the body as fast as the network brings it,
/// and past ``bufferLimit`` bytes buffered and unread the connection is dropped with an error
/// (a network error: the source reconnects with `Last-Event-ID`), so a slow consumer cannot
/// make the process buffer without bound. The task is not suspended instead: on Linux,
/// FoundationNetworking 6.3.1 removes a suspended transfer from libcurl and stops the
/// process when data arrives for it ("Received body data, but no transfer in progress"), or
/// loses the rest of the body.
final class URLSessionResponse: EventStreamResponse, Sendable {
    static let bufferLimit = 4 << 20

    let status: Int
    let headers: HeaderFields
    private let delegate: URLSessionStreamDelegate

    var interrupt: @Sendable () -> Void { { [delegate] in delegate.cancel() } }

    private init(status: Int, headers: HeaderFields, delegate: URLSessionStreamDelegate) {
        self.status = status
        self.headers = headers
        self.delegate = delegate
    }

    deinit {
        delegate.cancel()
    }

    nonisolated(nonsending) static func open(_ request: EventSourceRequest) async throws -> URLSessionResponse {
        var urlRequest = URLRequest(url: request.url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: 24 * 3600)
        urlRequest.httpMethod = request.method
        for (name, value) in request.headers { urlRequest.addValue(value, forHTTPHeaderField: name) }
        if let body = request.body { urlRequest.httpBody = Data(body) }
        let configuration = URLSessionConfiguration.ephemeral
        // The source's own connect and read timeouts apply (they cancel the task); these
        // only keep URLSession's from firing first.
        configuration.timeoutIntervalForRequest = 24 * 3600
        configuration.timeoutIntervalForResource = .infinity
        let delegate = URLSessionStreamDelegate()
        let session = URLSession(configuration: configuration, delegate: delegate, delegateQueue: nil)
        let task = session.dataTask(with: urlRequest)
        delegate.start(task)
        // The session lets go of its delegate once the task completes.
        session.finishTasksAndInvalidate()
        do {
            let response = try await delegate.response()
            var headers = HeaderFields()
            for (name, value) in response.allHeaderFields {
                headers.add(String(describing: name), String(describing: value))
            }
            return URLSessionResponse(status: response.statusCode, headers: headers, delegate: delegate)
        } catch {
            delegate.cancel()
            throw error
        }
    }

    nonisolated(nonsending) func read(into buffer: inout [UInt8]) async throws -> Bool {
        guard let data = try await delegate.nextData() else { return false }
        buffer.append(contentsOf: data)
        return true
    }
}

/// The delegate's state, behind a lock: what arrived and who waits for it.
final class URLSessionStreamDelegate: NSObject, URLSessionDataDelegate, Sendable {
    private struct State {
        var task: URLSessionDataTask?
        var response: HTTPURLResponse?
        var responseWaiter: CheckedContinuation<HTTPURLResponse, any Error>?
        var data = Data()
        /// Set when the consumer fell more than ``URLSessionResponse/bufferLimit`` behind.
        var overflowed = false
        var readWaiter: CheckedContinuation<Data?, any Error>?
        /// Set when the task completed: `nil` error for a clean end.
        var completion: Result<Void, any Error>?
    }

    private let state = Mutex(State())

    func start(_ task: URLSessionDataTask) {
        state.withLock { $0.task = task }
        task.resume()
    }

    func cancel() {
        let task = state.withLock { $0.task }
        task?.cancel()
    }

    func response() async throws -> HTTPURLResponse {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<HTTPURLResponse, any Error>) in
                let ready = state.withLock { state -> Result<HTTPURLResponse, any Error>? in
                    if let response = state.response { return .success(response) }
                    if case .failure(let error) = state.completion { return .failure(error) }
                    if state.completion != nil { return .failure(URLError(.badServerResponse)) }
                    state.responseWaiter = continuation
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            cancel()
        }
    }

    /// The bytes that arrived since the last call, waiting for some; `nil` at the end.
    func nextData() async throws -> Data? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Data?, any Error>) in
                let ready = state.withLock { state -> Result<Data?, any Error>? in
                    if !state.data.isEmpty {
                        defer { state.data = Data() }
                        return .success(state.data)
                    }
                    if state.overflowed { return .failure(EventSourceError.invalidResponse("the consumer fell more than \(URLSessionResponse.bufferLimit >> 20) MiB behind the stream")) }
                    switch state.completion {
                    case .success: return .success(nil)
                    case .failure(let error): return .failure(error)
                    case nil:
                        state.readWaiter = continuation
                        return nil
                    }
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            cancel()
        }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse, completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        completionHandler(.allow)
        // An interim 1xx response is not the answer (RFC 9110 §15.2): wait for the final one.
        guard let response = response as? HTTPURLResponse, !(100..<200).contains(response.statusCode) else { return }
        let waiter = state.withLock { state -> CheckedContinuation<HTTPURLResponse, any Error>? in
            state.response = response
            defer { state.responseWaiter = nil }
            return state.responseWaiter
        }
        waiter?.resume(returning: response)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        let (waiter, cancel) = state.withLock { state -> (CheckedContinuation<Data?, any Error>?, URLSessionDataTask?) in
            guard !state.overflowed else { return (nil, nil) }
            if let waiter = state.readWaiter {
                state.readWaiter = nil
                return (waiter, nil)
            }
            state.data.append(data)
            guard state.data.count > URLSessionResponse.bufferLimit else { return (nil, nil) }
            // What is buffered is still read; then the read fails and the source reconnects.
            state.overflowed = true
            return (nil, state.task)
        }
        cancel?.cancel()
        waiter?.resume(returning: data)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse, newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        // Not followed here: the redirect arrives as the response, and the state machine decides.
        completionHandler(nil)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        let (responseWaiter, readWaiter) = state.withLock { state in
            state.completion = error.map { .failure($0) } ?? .success(())
            defer {
                state.responseWaiter = nil
                state.readWaiter = nil
            }
            return (state.responseWaiter, state.readWaiter)
        }
        if let responseWaiter {
            responseWaiter.resume(throwing: error ?? URLError(.badServerResponse))
        }
        if let error {
            readWaiter?.resume(throwing: error)
        } else {
            readWaiter?.resume(returning: nil)
        }
    }
}
#endif
