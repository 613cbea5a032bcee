import EventStreamKit

// EventStreamDemo [serve] [--host H] [--port P] [--news-interval S] [--backlog N] [--bench-rate R] [--bench-size S]
//                 [--signin-rate R] [--head-timeout S] [--write-timeout S] [--allowed-host H]...
//   serves the demo page, its JSON API and per-user event streams (the default command);
// EventStreamDemo listen <url> [--header 'K: V']... [--last-event-id ID]
//   prints a stream's events as JSON lines.
let arguments = Array(CommandLine.arguments.dropFirst())

switch arguments.first {
case "listen":
    do {
        let options = try ListenOptions(parsing: Array(arguments.dropFirst()))
        exitProcess(await listen(options))
    } catch {
        printError("EventStreamDemo: \(error)")
        exitProcess(2)
    }
case "help", "--help", "-h":
    print("""
    usage: EventStreamDemo [serve] [--host H] [--port P] [--news-interval S] [--backlog N] [--bench-rate R] [--bench-size S]
                                   [--signin-rate R] [--head-timeout S] [--write-timeout S] [--allowed-host H]...
           EventStreamDemo listen <url> [--header 'K: V']... [--last-event-id ID]
    """)
default:
    do {
        let options = try ServeOptions(parsing: Array(arguments.drop(while: { $0 == "serve" })))
        await serve(options)
    } catch {
        printError("EventStreamDemo: \(error)")
        exitProcess(2)
    }
}
