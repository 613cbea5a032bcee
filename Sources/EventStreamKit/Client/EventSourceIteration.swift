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

    private var machine: EventSourceStateMachine
    private let storage: EventSourceStorage
    private var phase = Phase.connecting
    private var parser: EventStreamParser
    private var buffer: [UInt8] = []
    private var elements: [EventStreamParser.Element] = []
    private var pending: [MessageEvent] = []
    private var pendingIndex = 0
    private var generator = SystemRandomNumberGenerator()

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
                switch phase {
                case .finished:
                    return nil
                case .connecting:
                    try await connect()
                case .waiting(let delay):
                    try await storage.sleep(for: delay)
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
                if error is WireError || error is EventSourceError && !isNetworkError(error) {
                    end()
                    throw error
                }
                try connectionEnded(error)
            }
        }
    }

    /// Sends the request (following redirects) and acts on the response.
    private nonisolated(nonsending) func connect() async throws {
        while true {
            let request = machine.request
            let response: any EventStreamResponse = if request.url.scheme?.lowercased() == "https" || machine.configuration.transport == .foundation {
                try await URLSessionResponse.open(request)
            } else {
                try await HTTPClientResponse.open(request)
            }
            switch machine.received(status: response.status, headers: response.headers) {
            case .open:
                guard storage.attach(response.interrupt) else {
                    end()
                    return
                }
                parser = EventStreamParser(limits: machine.configuration.limits, lastEventID: machine.lastEventID)
                phase = .streaming(response)
                return
            case .redirect:
                continue
            case .finish:
                end()
                return
            case .fail(let error):
                end()
                throw error
            }
        }
    }

    private nonisolated(nonsending) func read(from response: any EventStreamResponse) async throws {
        buffer.removeAll(keepingCapacity: true)
        guard try await response.read(into: &buffer) else {
            try connectionEnded(nil)
            return
        }
        machine.receivedBytes()
        elements.removeAll(keepingCapacity: true)
        try parser.parse(buffer, into: &elements)
        for element in elements {
            switch element {
            case .event(let event): pending.append(event)
            case .retry(let delay): machine.received(retry: delay)
            case .comment: break
            }
        }
        machine.update(lastEventID: parser.lastEventID)
        if pending.isEmpty { storage.update(lastEventID: parser.lastEventID) }
    }

    /// The connection is over: discard an incomplete event, then wait and reconnect, or fail.
    private func connectionEnded(_ error: (any Error)?) throws {
        parser.finish()
        storage.detach()
        phase = .connecting  // releases the response, which closes its connection
        switch machine.connectionEnded(error: error, using: &generator) {
        case .reconnect(let delay):
            storage.update(readyState: .connecting)
            phase = .waiting(delay)
        case .fail(let failure):
            end()
            throw failure
        }
    }

    private func end() {
        machine.close()
        storage.finish()  // detaches the interrupt too
        phase = .finished
    }

    /// A malformed response is a network error (fetch's rule): it reconnects.
    private func isNetworkError(_ error: any Error) -> Bool {
        (error as? EventSourceError)?.code == .invalidResponse
    }
}
