#if canImport(Glibc)
@testable import EventStreamKit
import Glibc
import Testing

/// The TLS layer of the built-in client against a peer that is not a TLS server: what it
/// sends first, and that a broken or vanished server ends the handshake with an error or the
/// end of the stream, never a wait for bytes that cannot come. The handshake with a real
/// server, certificate checks and events over TLS are driven end to end by
/// `Tests/HostileServers/tls.py` (a Python `ssl` server and a throwaway CA), in CI.
@Suite("TLSSession: the client's TLS over the system's OpenSSL")
struct TLSSessionTests {
    /// A connected pair: the client's end non-blocking, the peer's blocking.
    private func pair() throws -> (client: Socket, peer: Socket) {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else { throw SocketError("socketpair") }
        let client = Socket(fd: fds[0])
        try client.setNonBlocking()
        return (client, Socket(fd: fds[1]))
    }

    /// What the peer has received so far (the client writes it all before it waits).
    private func received(_ peer: Socket) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        let count = buffer.withUnsafeMutableBytes { recv(peer.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        return Array(buffer.prefix(max(0, count)))
    }

    @Test("the ClientHello goes out at once, names the host (SNI) and offers http/1.1; then the session waits to read")
    func clientHelloForAName() throws {
        let (client, peer) = try pair()
        defer { client.close(); peer.close() }
        let session = try TLSSession(socket: client, host: "events.example.com")
        #expect(try session.handshake() == .readable)
        let hello = received(peer)
        #expect(hello.first == 0x16)  // a handshake record
        #expect(hello.count > 5 && hello[5] == 0x01)  // ClientHello
        #expect(hello.contains(subsequence: Array("events.example.com".utf8)))
        #expect(hello.contains(subsequence: Array("http/1.1".utf8)))
    }

    @Test("the ClientHello offers ECDHE with AEAD and elliptic-curve groups only: no finite-field DHE, static RSA or CBC")
    func offeredSuitesAndGroups() throws {
        let (client, peer) = try pair()
        defer { client.close(); peer.close() }
        let session = try TLSSession(socket: client, host: "localhost")
        #expect(try session.handshake() == .readable)
        let hello = received(peer)
        // record (5) + handshake header (4) + version (2) + random (32), then the session ID.
        var index = 5 + 4 + 2 + 32
        index += 1 + Int(hello[index])
        let suitesLength = Int(hello[index]) << 8 | Int(hello[index + 1])
        let suites = stride(from: index + 2, to: index + 2 + suitesLength, by: 2).map { UInt16(hello[$0]) << 8 | UInt16(hello[$0 + 1]) }
        let tls13: Set<UInt16> = [0x1301, 0x1302, 0x1303]
        let ecdheAEAD: Set<UInt16> = [0xC02B, 0xC02C, 0xC02F, 0xC030, 0xCCA8, 0xCCA9]
        let offered = suites.filter { $0 != 0x00FF }  // the renegotiation-info signal is not a suite
        #expect(!offered.isEmpty && offered.allSatisfy { tls13.contains($0) || ecdheAEAD.contains($0) }, "suites \(offered.map { String($0, radix: 16) })")
        // The supported_groups extension (10): no ffdhe groups (0x0100...0x01FF).
        index += 2 + suitesLength
        index += 1 + Int(hello[index])  // compression methods
        let extensionsEnd = index + 2 + (Int(hello[index]) << 8 | Int(hello[index + 1]))
        index += 2
        var groups: [UInt16] = []
        while index + 4 <= extensionsEnd {
            let type = Int(hello[index]) << 8 | Int(hello[index + 1])
            let length = Int(hello[index + 2]) << 8 | Int(hello[index + 3])
            if type == 10 {
                groups = stride(from: index + 6, to: index + 4 + length, by: 2).map { UInt16(hello[$0]) << 8 | UInt16(hello[$0 + 1]) }
            }
            index += 4 + length
        }
        #expect(!groups.isEmpty && groups.allSatisfy { $0 < 0x0100 || $0 > 0x01FF }, "groups \(groups.map { String($0, radix: 16) })")
    }

    @Test("an IP address is checked against the certificate but never sent as SNI (RFC 6066 §3)")
    func noServerNameForAnAddress() throws {
        let (client, peer) = try pair()
        defer { client.close(); peer.close() }
        let session = try TLSSession(socket: client, host: "127.0.0.1")
        #expect(try session.handshake() == .readable)
        let hello = received(peer)
        #expect(hello.first == 0x16)
        #expect(!hello.contains(subsequence: Array("127.0.0.1".utf8)))
    }

    @Test("a server that answers in plain HTTP fails the handshake with a protocol error")
    func plainHTTPAnswer() throws {
        let (client, peer) = try pair()
        defer { client.close(); peer.close() }
        let session = try TLSSession(socket: client, host: "localhost")
        #expect(try session.handshake() == .readable)
        _ = received(peer)
        let answer = Array("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".utf8)
        _ = answer.withUnsafeBytes { send(peer.fd, $0.baseAddress, $0.count, 0) }
        #expect {
            _ = try session.handshake()
        } throws: { error in
            (error as? TLSError)?.code == .protocolError
        }
    }

    @Test("a server that closes during the handshake ends it: an error or the end, never another wait")
    func closeDuringHandshake() throws {
        let (client, peer) = try pair()
        defer { client.close() }
        let session = try TLSSession(socket: client, host: "localhost")
        #expect(try session.handshake() == .readable)
        peer.close()
        do {
            #expect(try session.handshake() == .endOfFile)
        } catch {
            #expect(error is TLSError || error is SocketError, "\(error)")
        }
    }

    @Test("garbage after a TLS record header is a protocol error, whatever its claimed length")
    func garbageRecord() throws {
        let (client, peer) = try pair()
        defer { client.close(); peer.close() }
        let session = try TLSSession(socket: client, host: "localhost")
        #expect(try session.handshake() == .readable)
        _ = received(peer)
        // A handshake record claiming 65,535 bytes (over TLS's 16 KiB + 2 KiB limit).
        let record: [UInt8] = [0x16, 0x03, 0x03, 0xFF, 0xFF] + [UInt8](repeating: 0x41, count: 100)
        _ = record.withUnsafeBytes { send(peer.fd, $0.baseAddress, $0.count, 0) }
        #expect {
            _ = try session.handshake()
        } throws: { error in
            (error as? TLSError)?.code == .protocolError
        }
    }
}

extension Array where Element == UInt8 {
    fileprivate func contains(subsequence: [UInt8]) -> Bool {
        guard subsequence.count <= count else { return false }
        return (0...(count - subsequence.count)).contains { self[$0..<($0 + subsequence.count)].elementsEqual(subsequence) }
    }
}
#endif
