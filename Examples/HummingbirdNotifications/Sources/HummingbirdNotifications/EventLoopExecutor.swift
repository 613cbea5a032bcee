import Hummingbird
import NIOCore

/// Runs a task's jobs on one swift-nio event loop: the loop of the channel a stream is
/// written to. A stream's body iterated with it as the task executor preference wakes up on
/// its channel's own loop, and Hummingbird's writer then writes at once instead of hopping to
/// that loop once per chunk (swift-nio's outbound writer writes inline when called on it).
final class EventLoopExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// Notices, inside the channel's pipeline, that a stream's client left: its side of the TCP
/// connection closed (Hummingbird allows half-closed connections, so that is an event, not a
/// close) or the channel went away. No task waits for it: Hummingbird's
/// `consumeWithCancellationOnInboundClose` does the same with a task group, three tasks and
/// an `AsyncStream`, which cost 11.5 KiB per idle stream (`Docs/Performance.md`).
final class ClientLeftHandler: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny

    let onLeave: @Sendable () -> Void

    init(onLeave: @escaping @Sendable () -> Void) { self.onLeave = onLeave }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent { onLeave() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        onLeave()
        context.fireChannelInactive()
    }
}

/// Hummingbird's basic request context, plus the request's channel.
struct AppRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
