import Vapor

/// Runs a task's jobs on one swift-nio event loop: the loop of the channel a stream is
/// written to (`request.eventLoop`). A stream's body iterated with it as the task executor
/// preference wakes up on its channel's own loop, where Vapor's body writer writes without a
/// hop to that loop, and the future it returns completes without a hop back.
final class EventLoopExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
