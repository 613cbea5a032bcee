#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import EventStreamKit

/// IP address literals in one canonical spelling, so that two spellings of one address
/// compare equal: `inet_ntop`'s (`::1`, not `0:0::1`), and an IPv4-mapped IPv6 address
/// (`::ffff:192.0.2.1`, how a dual-stack listener sees an IPv4 peer) as its IPv4 address.
enum IPAddress {
    /// `literal` in canonical form, or `nil` if it is not an IPv4 or IPv6 literal (no
    /// brackets, port, zone or prefix length).
    static func canonical<S: StringProtocol>(_ literal: S) -> String? {
        // The longest IPv6 literal with an embedded IPv4 address is 45 characters.
        guard (2...45).contains(literal.utf8.count), !literal.utf8.contains(0) else { return nil }
        let text = String(literal)
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return format(v4) }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        return format(v6)
    }

    /// The peer of a connected socket, canonical; `nil` if it has none or is not IP.
    static func peer(of fd: Int32) -> String? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) } }
        guard ok == 0 else { return nil }
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { format($0.pointee.sin_addr) } }
        case AF_INET6:
            return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { format($0.pointee.sin6_addr) } }
        default:
            return nil
        }
    }

    private static func format(_ address: in_addr) -> String? {
        var address = address
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(INET_ADDRSTRLEN)) { buffer in
            guard inet_ntop(AF_INET, &address, buffer.baseAddress, socklen_t(buffer.count)) != nil else { return nil }
            return String(cString: buffer.baseAddress!)
        }
    }

    private static func format(_ address: in6_addr) -> String? {
        var address = address
        let bytes = withUnsafeBytes(of: &address) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
            // IPv4-mapped: the IPv4 peer of a dual-stack listener.
            var v4 = in_addr()
            withUnsafeMutableBytes(of: &v4) { $0.copyBytes(from: bytes[12..<16]) }
            return format(v4)
        }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(INET6_ADDRSTRLEN)) { buffer in
            guard inet_ntop(AF_INET6, &address, buffer.baseAddress, socklen_t(buffer.count)) != nil else { return nil }
            return String(cString: buffer.baseAddress!)
        }
    }
}

extension HTTPServer {
    /// The address of the client behind a request from `peer` (see
    /// ``HTTPRequest/clientAddress``): `peer` itself unless it is one of `trusted`; then,
    /// walking `X-Forwarded-For` (`forwardedFor`, its fields in order) from the right, the
    /// first address that is not trusted. When every address is trusted, the left-most one.
    /// A malformed entry stops the walk: what lies left of it came through a hop that could
    /// not vouch for it, so the last trusted address reached is the answer. Empty list
    /// elements (`a, , b`) are skipped, as RFC 9110 §5.6.1 allows.
    static func clientAddress(peer: String?, forwardedFor: [String], trusted: Set<String>) -> String? {
        guard let peer, trusted.contains(peer) else { return peer }
        var client = peer
        for field in forwardedFor.reversed() {
            for element in field.split(separator: ",", omittingEmptySubsequences: false).reversed() {
                let entry = element.trimmingSpaces
                if entry.isEmpty { continue }
                guard let address = IPAddress.canonical(entry) else { return client }
                client = address
                if !trusted.contains(address) { return address }
            }
        }
        return client
    }
}
