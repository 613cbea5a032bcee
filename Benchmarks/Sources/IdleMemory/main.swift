import CMallocStats
import EventStreamHTTP
import EventStreamKit
#if canImport(Glibc)
import Glibc
#endif

// What one idle event stream costs the server, in process: an HTTPServer and an EventServer,
// and N raw loopback clients that send `GET /events` and then nothing. The clients are bare
// descriptors (no heap), so the deltas are the server's. Reports heap in use (mallinfo2) and
// resident memory, per stream, after a warm-up round of the same size.
//
//   swift run -c release --package-path Benchmarks IdleMemory [streams, default 5000]

let streams = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 5_000

func residentBytes() -> Int {
    var text = [UInt8](repeating: 0, count: 256)
    let fd = open("/proc/self/statm", O_RDONLY)
    let count = read(fd, &text, text.count)
    close(fd)
    let fields = String(decoding: text[..<max(count, 0)], as: UTF8.self).split(separator: " ")
    return (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
}

func heapInUse() -> Int { cmallocstats_heap_in_use() }

func connect(port: UInt16) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let result = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    precondition(result == 0, "connect failed: \(errno)")
    return fd
}

func open(_ count: Int, port: UInt16, from first: Int) -> [Int32] {
    (0..<count).map { index in
        let fd = connect(port: port)
        let request = Array("GET /events?user=u\(first + index) HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        precondition(write(fd, request, request.count) == request.count)
        return fd
    }
}

func waitFor(_ hub: EventServer<String>, clients: Int) async {
    while await hub.clientCount != clients { try? await Task.sleep(for: .milliseconds(20)) }
    try? await Task.sleep(for: .milliseconds(500))  // let every stream reach its idle wait
}

var configuration = EventServer<String>.Configuration()
configuration.heartbeatInterval = nil
let hub = EventServer<String>(configuration: configuration)
var router = HTTPRouter()
router.events("/events", from: hub) { request in request.query["user"] ?? "anonymous" }
var serverConfiguration = HTTPServer.Configuration(host: "127.0.0.1", port: 0)
serverConfiguration.logger = HTTPLogger { _, _ in }
let server = try HTTPServer(router: router, configuration: serverConfiguration)
let serving = Task.detached { await server.run() }  // off the main actor, which the blocking connects below hold

// Fresh, as the bench's W3 measures: resident memory grows by what the streams need
// (allocator arenas, dictionaries and task slabs grow for the first time here).
let (heap0, rss0) = (heapInUse(), residentBytes())
let clients = open(streams, port: server.port, from: 0)
await waitFor(hub, clients: streams)
let (heap1, rss1) = (heapInUse(), residentBytes())
for fd in clients { close(fd) }
await waitFor(hub, clients: 0)
// Again, now that the allocator has the memory: the heap in use is what the streams hold.
let (heap2, rss2) = (heapInUse(), residentBytes())
let again = open(streams, port: server.port, from: streams)
await waitFor(hub, clients: streams)
let (heap3, rss3) = (heapInUse(), residentBytes())
for fd in again { close(fd) }
await waitFor(hub, clients: 0)
server.shutdown()
await serving.value

func perStream(_ bytes: Int) -> String { format1(Double(bytes) / Double(streams) / 1024) + " KiB" }
print("\(streams) idle streams, per stream:")
print("  first time (W3's measure): resident \(perStream(rss1 - rss0)), heap in use \(perStream(heap1 - heap0))")
print("  second time:               resident \(perStream(rss3 - rss2)), heap in use \(perStream(heap3 - heap2))")

func format1(_ x: Double) -> String { String(Double(Int((x * 10).rounded())) / 10) }
