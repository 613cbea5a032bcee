import EventStreamKit

// EventStreamDemo [serve] [--host H] [--port P] [--news-interval S] [--backlog N] [--bench-rate R] [--bench-size S]
//                 [--signin-rate R] [--head-timeout S] [--write-timeout S] [--allowed-host H]... [--trusted-proxy ADDR]...
//   serves the demo page, its JSON API and per-user event streams (the default command);
// EventStreamDemo listen <url> [-H 'K: V']... [--last-event-id ID] [--method M] [--data D | --data-file F]
//                        [--connect-timeout S] [--read-timeout S] [--max-attempts N] [--transport builtin|foundation]
//   prints a stream's events as JSON lines.
let arguments = Array(CommandLine.arguments.dropFirst())

switch arguments.first {
case "listen":
    do {
        let options = try ListenOptions(parsing: Array(arguments.dropFirst()))
        if options.showsHelp {
            print(ListenOptions.usage)
            exitProcess(0)
        }
        exitProcess(await listen(options))
    } catch {
        printError("EventStreamDemo: \(error)")
        exitProcess(2)
    }
case "help", "--help", "-h":
    print(ServeOptions.usage)
    print(ListenOptions.usage)
default:
    let serveArguments = Array(arguments.drop(while: { $0 == "serve" }))
    if serveArguments.contains(where: { $0 == "--help" || $0 == "-h" }) {
        print(ServeOptions.usage)
        exitProcess(0)
    }
    do {
        let options = try ServeOptions(parsing: serveArguments)
        await serve(options)
    } catch {
        printError("EventStreamDemo: \(error)")
        exitProcess(2)
    }
}
