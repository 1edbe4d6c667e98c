/// `host:port` as written in configuration: `0.0.0.0:110`, `[::]:995`, `[2001:db8::25]:143`, `localhost:143`.
///
/// - An IPv6 address must be in brackets (`::1:995` is ambiguous) and only an IPv6 address may be: the text in
///   brackets must parse as `IPAddress`, optionally followed by a zone (`[fe80::1%eth0]:143`: the host is to be
///   bound or connected to, and getaddrinfo understands the zone; `address` is then nil).
/// - A host of digits and dots must be a valid IPv4 address (`300.1.1.1`, `010.0.0.1` are errors, not names).
/// - Any other host is a name, which is not resolved here; it must not contain whitespace, control characters
///   or brackets.
/// - The port is 1 to 5 decimal digits, 0...65535 (whether 0 is allowed is the caller's business).
///
/// `host` is kept as written, without brackets.
public struct HostPort: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// The host as an address, when it is one (nil for a name or a host with a zone).
    public var address: IPAddress? { IPAddress(host) }

    /// Brackets an IPv6 host: "127.0.0.1:995", "[::1]:995".
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The error for a port above 65535 (callers that refuse port 0 say so in their own words).
    public static let portOutOfRange = IPAddressError("the port must be 0...65535")

    public init(parsing text: String) throws(IPAddressError) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw IPAddressError("missing \"]\" after the IPv6 address") }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw IPAddressError("expected host:port, e.g. [::1]:110") }
            portPart = rest.dropFirst()
            guard hostPart.contains(":") else { throw IPAddressError("only IPv6 addresses go in brackets") }
            // A zone (`fe80::1%eth0`) names the interface of a link-local address; getaddrinfo takes it, so a
            // host to connect to or bind may carry one (IPAddress itself has none).
            let percent = hostPart.firstIndex(of: "%")
            if let percent {
                let zone = hostPart[hostPart.index(after: percent)...]
                guard !zone.isEmpty, zone.utf8.allSatisfy({ ASCII.isDigit($0) || (($0 | 0x20) >= 97 && ($0 | 0x20) <= 122) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }) else {
                    throw IPAddressError("invalid zone \"\(zone)\" (an interface name or number after \"%\")")
                }
            }
            do {
                _ = try IPAddress(parsing: hostPart[..<(percent ?? hostPart.endIndex)])
            } catch {
                throw IPAddressError("invalid IPv6 address \"\(hostPart)\": \(error.reason)")
            }
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw IPAddressError("expected host:port, e.g. 127.0.0.1:110 or [::1]:110") }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            if hostPart.contains(":") { throw IPAddressError("put an IPv6 address in brackets, e.g. [::1]:110") }
            guard !hostPart.isEmpty else { throw IPAddressError("the host is empty") }
            guard hostPart.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F && $0 != "[" && $0 != "]" }) else {
                throw IPAddressError("the host contains spaces, brackets or control characters")
            }
            if hostPart.utf8.allSatisfy({ ASCII.isDigit($0) || $0 == UInt8(ascii: ".") }) {
                do {
                    _ = try IPAddress(parsing: hostPart)
                } catch {
                    throw IPAddressError("invalid IPv4 address \"\(hostPart)\": \(error.reason)")
                }
            }
        }
        guard !portPart.isEmpty, portPart.utf8.count <= 5, portPart.utf8.allSatisfy(ASCII.isDigit) else {
            throw IPAddressError("the port \"\(portPart)\" is not a number")
        }
        let value = portPart.utf8.reduce(0) { $0 * 10 + Int($1 - 48) }
        guard value <= 65_535 else { throw Self.portOutOfRange }
        host = String(hostPart)
        port = UInt16(value)
    }
}
