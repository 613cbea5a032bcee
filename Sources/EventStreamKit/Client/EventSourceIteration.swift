import Foundation

/// The reading side of an ``EventSource``: performs what ``EventSourceStateMachine``
/// decides, one connection at a time, on the consumer's task. Owned by the iterator;
/// releasing it closes the connection.
final class EventSourceIteration {
    private enum Phase {
        case connecting
        case streaming(any EventStreamResponse)
        case waiting(Duration)
        case finished
    }

    /// A timeout noticed by the iterator (the storage's timers interrupt the wait; this
    /// carries it to ``connectionEnded(_:)``).
    private struct Timeout: Error {
        let failure: EventSource.ConnectionFailure
    }

    private var machine: EventSourceStateMachine
    private let storage: EventSourceStorage
    private var phase = Phase.connecting
    private var parser: EventStreamParser
    private var buffer: [UInt8] = []
    private var elements: [EventStreamParser.Element] = []
    private var pending: [MessageEvent] = []
    private var pendingIndex = 0
    /// A parse error, thrown once the events before it are delivered.
    private var deferredError: (any Error)?
    private var generator = SystemRandomNumberGenerator()

    private var configuration: EventSource.Configuration { machine.configuration }

    init(machine: EventSourceStateMachine, storage: EventSourceStorage) {
        self.machine = machine
        self.storage = storage
        parser = EventStreamParser(limits: machine.configuration.limits, lastEventID: machine.lastEventID)
    }

    deinit {
        storage.finish()
    }

    nonisolated(nonsending) func next() async throws -> MessageEvent? {
        while true {
            if pendingIndex < pending.count {
                let event = pending[pendingIndex]
                pendingIndex += 1
                storage.update(lastEventID: pendingIndex == pending.count ? machine.lastEventID : event.lastEventID)
                return event
            }
            pending.removeAll(keepingCapacity: true)
            pendingIndex = 0
            if storage.isClosed {
                end()
                return nil
            }
            do {
                if let error = deferredError {
                    deferredError = nil
                    throw error
                }
                switch phase {
                case .finished:
                    return nil
                case .connecting:
                    try await connect()
                case .waiting(let delay):
                    try await storage.sleep(for: delay)
                    _ = storage.takeInterruption()  // reconnectNow() only shortens the wait
                    phase = .connecting
                case .streaming(let response):
                    try await read(from: response)
                }
            } catch {
                if Task.isCancelled {
                    end()
                    throw CancellationError()
                }
                if storage.isClosed {
                    end()
                    return nil
                }
                if let timeout = error as? Timeout {
                    try connectionEnded(timeout.failure)
                } else if error is WireError || error is EventSourceError && !isNetworkError(error) {
                    end(.closed(failure: .network(error)))
                    throw error
                } else {
                    try connectionEnded(.network(error))
                }
            }
        }
    }

    /// Sends the request (following redirects) and acts on the response.
    private nonisolated(nonsending) func connect() async throws {
        machine.attemptStarted()
        storage.report(.connecting(attempt: machine.attempts))
        // One deadline for the whole attempt: the header provider, every redirect hop, the
        // final head. Per hop, a server answering each 307 just under the timeout would keep
        // one attempt going for maxRedirects times the timeout.
        let deadline = configuration.connectTimeout.map { ContinuousClock.now + $0 }
        func remaining() -> Duration? { deadline.map { max(.zero, ContinuousClock.now.duration(to: $0)) } }
        var extra = HeaderFields()
        if let provider = configuration.headerProvider {
            // Part of the attempt: the connect timeout, close() and reconnectNow() end it too.
            do {
                extra = try await storage.connect(timeout: remaining()) { try await provider() }
            } catch {
                if try interrupted() { return }
                throw error
            }
            do {
                try EventSourceStateMachine.validate(extra)
            } catch {
                end(.closed(failure: .network(error)))
                throw error
            }
        }
        while true {
            let request = machine.request(adding: extra)
            #if canImport(Darwin)
            let useFoundation = request.url.scheme?.lowercased() == "https" || configuration.transport == .foundation
            #else
            let useFoundation = false
            #endif
            let opened: OpenedResponse
            do {
                opened = try await storage.connect(timeout: remaining()) { () async throws -> OpenedResponse in
                    #if canImport(Darwin)
                    if useFoundation { return .foundation(try await URLSessionResponse.open(request)) }
                    #endif
                    return .builtin(try await HTTPClientResponse.connect(request))
                }
            } catch {
                if try interrupted() { return }
                throw error
            }
            let response = opened.response()
            if case .builtin = opened, let coding = Self.contentCoding(response.headers) {
                end(.closed(failure: .network(EventSourceError.unsupportedContentEncoding(coding, url: request.url.absoluteString))))
                throw EventSourceError.unsupportedContentEncoding(coding, url: request.url.absoluteString)
            }
            switch machine.received(status: response.status, headers: response.headers, at: .now) {
            case .open:
                guard storage.attach(response.interrupt, readTimeout: configuration.readTimeout) else {
                    _ = try interrupted()
                    return
                }
                parser = EventStreamParser(limits: configuration.limits, lastEventID: machine.lastEventID)
                phase = .streaming(response)
                storage.report(.open)
                return
            case .redirect:
                continue
            case .finish:
                end()
                return
            case .failed(let failure):
                try connectionEnded(failure)
                return
            case .fail(let error):
                end(.closed(failure: .network(error)))
                throw error
            }
        }
    }

    /// After a wait ended: acts on why, if something interrupted it. Returns `true` when
    /// it was ``EventSource/reconnectNow()`` (the phase is then `.connecting`, with no
    /// delay and no failure counted), `false` when nothing interrupted it; throws
    /// ``Timeout`` for a timeout, `CancellationError` for ``EventSource/close()``.
    private func interrupted() throws -> Bool {
        switch storage.takeInterruption() {
        case nil:
            return false
        case .closed:
            throw CancellationError()
        case .connectTimeout:
            throw Timeout(failure: .connectTimeout(configuration.connectTimeout ?? .zero))
        case .readTimeout:
            throw Timeout(failure: .readTimeout(configuration.readTimeout ?? .zero))
        case .reconnectNow:
            parser.finish()
            storage.detach()
            machine.reconnectingNow()
            phase = .connecting
            return true
        }
    }

    private nonisolated(nonsending) func read(from response: any EventStreamResponse) async throws {
        buffer.removeAll(keepingCapacity: true)
        let more: Bool
        do {
            more = try await response.read(into: &buffer)
        } catch {
            if try interrupted() { return }
            throw error
        }
        guard more else {
            if try interrupted() { return }
            try connectionEnded(.endOfStream)
            return
        }
        storage.noteActivity()
        elements.removeAll(keepingCapacity: true)
        do {
            try parser.parse(buffer, into: &elements)
        } catch {
            // The events completed before the bad line are delivered first, as they would
            // have been had the bytes arrived in two reads.
            deferredError = error
        }
        for element in elements {
            switch element {
            case .event(let event):
                pending.append(event)
                machine.receivedEvent()
            case .retry(let delay): machine.received(retry: delay)
            case .comment: break
            }
        }
        machine.update(lastEventID: parser.lastEventID)
        if pending.isEmpty { storage.update(lastEventID: parser.lastEventID) }
    }

    /// The connection is over: discard an incomplete event, then wait and reconnect, or end.
    private func connectionEnded(_ failure: EventSource.ConnectionFailure) throws {
        parser.finish()
        storage.detach()
        phase = .connecting  // releases the response, which closes its connection
        switch machine.connectionEnded(failure, at: .now, using: &generator) {
        case .reconnect(let delay):
            storage.report(.retrying(after: delay, failure: failure))
            phase = .waiting(delay)
        case .finish:
            end(.closed(failure: failure.isEndOfStream ? nil : failure))
        case .fail(let error):
            end(.closed(failure: failure))
            throw error
        }
    }

    private func end(_ change: EventSource.StateChange = .closed(failure: nil)) {
        machine.close()
        storage.finish(change)  // detaches the interrupt too
        phase = .finished
    }

    /// A malformed response is a network error (fetch's rule): it reconnects.
    private func isNetworkError(_ error: any Error) -> Bool {
        (error as? EventSourceError)?.code == .invalidResponse
    }

    /// The response's content coding, if it has one other than `identity`.
    static func contentCoding(_ headers: HeaderFields) -> String? {
        let codings = headers.values("Content-Encoding").flatMap { $0.split(separator: ",") }.map { $0.trimmingSpaces.lowercasedASCII }
        return codings.first { !$0.isEmpty && $0 != "identity" }
    }
}

extension EventSource.ConnectionFailure {
    var isEndOfStream: Bool {
        if case .endOfStream = self { true } else { false }
    }
}

/// A response whose head arrived, from either transport: what a connecting task hands back.
enum OpenedResponse: Sendable {
    case builtin(HTTPClientResponse.Opened)
    #if canImport(Darwin)
    case foundation(URLSessionResponse)
    #endif

    func response() -> any EventStreamResponse {
        switch self {
        case .builtin(let opened): HTTPClientResponse(opened)
        #if canImport(Darwin)
        case .foundation(let response): response
        #endif
        }
    }
}
