import IMAP
import Wire

/// The scalar syntaxes of `popgate.yaml` that YAML itself does not know:
/// durations, `host:port` addresses, IMAP atoms, listener names.
/// Each returns the value or a message saying what is wrong (without the key path).
enum ValueParsers {
    // MARK: Durations

    /// `500ms`, `30s`, `10m`, `1h`, or `0` alone: an integer and one unit,
    /// no sign, no fraction, no compound (`1h30m`).
    static func duration(_ text: String) -> Duration? {
        if text == "0" { return .zero }
        let bytes = Array(text.utf8)
        var digitCount = 0
        while digitCount < bytes.count, ASCIIDigits.isDigit(bytes[digitCount]) { digitCount += 1 }
        // 18 digits always fit in Int64, so only the unit multiplication can overflow.
        guard digitCount > 0, digitCount <= 18 else { return nil }
        var value: Int64 = 0
        for byte in bytes[..<digitCount] { value = value * 10 + Int64(byte - 48) }
        let millisecondsPerUnit: Int64
        switch String(decoding: bytes[digitCount...], as: UTF8.self) {
        case "ms": millisecondsPerUnit = 1
        case "s": millisecondsPerUnit = 1_000
        case "m": millisecondsPerUnit = 60_000
        case "h": millisecondsPerUnit = 3_600_000
        default: return nil
        }
        let (milliseconds, overflow) = value.multipliedReportingOverflow(by: millisecondsPerUnit)
        guard !overflow else { return nil }
        return .milliseconds(milliseconds)
    }

    /// The shortest exact spelling in the file's own syntax: `10m`, `90s`, `1500ms`.
    static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let milliseconds = seconds * 1_000 + attoseconds / 1_000_000_000_000_000
        if milliseconds == 0 { return "0s" }
        if milliseconds % 3_600_000 == 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds % 60_000 == 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1_000 == 0 { return "\(milliseconds / 1_000)s" }
        return "\(milliseconds)ms"
    }

    // MARK: Addresses

    /// Host as written (without brackets) and port.
    typealias Address = HostPort

    /// `host:port`, `[v6]:port` (`Wire.HostPort`). Port 0 ("any free port") only when `allowPortZero`.
    static func address(_ text: String, allowPortZero: Bool) -> Result<Address, AddressError> {
        let parsed: HostPort
        do {
            parsed = try HostPort(parsing: text)
        } catch {
            guard error == HostPort.portOutOfRange else { return .failure(.init(text, error.reason)) }
            return .failure(.init(text, allowPortZero ? "the port must be 0...65535 (0: any free port)" : "the port must be 1...65535"))
        }
        guard parsed.port != 0 || allowPortZero else { return .failure(.init(text, "the port must be 1...65535")) }
        return .success(parsed)
    }

    /// A network in CIDR notation (`Wire.IPNetwork`), or a single address.
    static func network(_ text: String) -> Result<IPNetwork, AddressError> {
        do {
            return .success(try IPNetwork(parsing: text))
        } catch {
            return .failure(AddressError(network: text, error.reason))
        }
    }

    struct AddressError: Error, Equatable {
        var message: String
        init(_ text: String, _ reason: String) { message = "invalid address \"\(text)\": \(reason)" }
        init(network text: String, _ reason: String) { message = "invalid network \"\(text)\": \(reason)" }
    }

    // MARK: Names

    /// A configured keyword must be an IMAP atom (`IMAPCommandEncoder.isAtomChar`, the one check the
    /// encoder uses too) and not a system flag. Returns what is wrong, or nil.
    static func imapAtomProblem(_ text: String) -> String? {
        if text.isEmpty { return "must not be empty" }
        if text.hasPrefix("\\") { return "invalid IMAP keyword \"\(text)\": a keyword, not a system flag like \\Deleted" }
        for scalar in text.unicodeScalars where !(scalar.isASCII && IMAPCommandEncoder.isAtomChar(UInt8(scalar.value))) {
            if scalar.value <= 0x20 || scalar.value >= 0x7F {
                return "invalid IMAP keyword \"\(text)\": only printable ASCII without spaces is allowed"
            }
            return "invalid IMAP keyword \"\(text)\": \"\(scalar)\" is not allowed in an IMAP atom"
        }
        return nil
    }

    /// `[A-Za-z0-9_.-]+`, as a systemd `FileDescriptorName` allows.
    static func isValidListenerName(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { byte in
            ASCIIDigits.isDigit(byte) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
        }
    }

    /// Mailbox names: the IMAP module encodes them; here only what can never be one.
    static func mailboxProblem(_ text: String) -> String? {
        if text.isEmpty { return "must not be empty" }
        if text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) { return "must not contain control characters" }
        return nil
    }
}

private enum ASCIIDigits {
    static func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }
}
