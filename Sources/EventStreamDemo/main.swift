import EventStreamKit

// `EventStreamDemo serve [--host H] [--port P] [--bench-rate R] [--bench-size S]` serves
// event streams; `EventStreamDemo listen <url> [--header 'K: V']... [--last-event-id ID]`
// prints a stream's events as JSON lines; with no arguments the demo says what it is (the full demo, with its web
// page, is the next step).
let arguments = Array(CommandLine.arguments.dropFirst())

if arguments.first == "serve" {
    do {
        let options = try ServeOptions(parsing: Array(arguments.dropFirst()))
        await serve(options)
    } catch {
        printError("EventStreamDemo: \(error)")
        exitProcess(2)
    }
} else if arguments.first == "listen" {
    do {
        let options = try ListenOptions(parsing: Array(arguments.dropFirst()))
        exitProcess(await listen(options))
    } catch {
        printError("EventStreamDemo: \(error)")
        exitProcess(2)
    }
} else {
    let event = try ServerSentEvent(id: "1", event: "notification", data: "Hello from EventStreamKit")
    print("EventStreamDemo — per-user push notifications over Server-Sent Events (work in progress).")
    print()
    print("The wire layer encodes an event like this:")
    print(String(decoding: EventFrame(event).bytes, as: UTF8.self), terminator: "")
    print("Run `EventStreamDemo serve --port 8080` to serve /events (bench mode: --bench-rate R --bench-size S).")
    print("Run `EventStreamDemo listen http://127.0.0.1:8080/events` to print a stream's events as JSON lines.")
    print("Coming next: the browser page with live per-user notifications.")
}
