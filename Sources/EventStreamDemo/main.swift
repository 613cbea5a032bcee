import EventStreamKit

// A placeholder until the demo issue lands: it shows the wire layer at work and says
// what the demo will become.
let event = try ServerSentEvent(id: "1", event: "notification", data: "Hello from EventStreamKit")
print("EventStreamDemo — per-user push notifications over Server-Sent Events (work in progress).")
print()
print("The wire layer encodes an event like this:")
print(String(decoding: EventFrame(event).bytes, as: UTF8.self), terminator: "")
print("Coming next: `EventStreamDemo serve` (a browser page with live per-user notifications),")
print("`EventStreamDemo listen <url>` (a command-line EventSource) and a bench mode.")
