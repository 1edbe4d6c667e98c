import Wire

/// The status of a condition response (RFC 3501 §7.1).
public enum IMAPStatus: Sendable, Equatable {
    case ok, no, bad, preauth, bye
}

/// A response code, the bracketed part of a condition (RFC 3501 §7.1, RFC 5530, RFC 4315):
///
///     S: A2 NO [AUTHENTICATIONFAILED] Authentication failed.
public enum IMAPResponseCode: Sendable, Equatable {
    case alert, parse, readOnly, readWrite, tryCreate
    /// Capability names uppercased, e.g. `["IMAP4REV1", "AUTH=PLAIN", "SASL-IR", "LITERAL+"]`.
    case capability([String])
    case uidValidity(UIDValidity)
    case uidNext(UID)
    /// Flags as sent, e.g. `["\\Seen", "\\*"]`.
    case permanentFlags([String])
    case inUse, authenticationFailed, authorizationFailed, unavailable, expired, privacyRequired
    case contactAdmin, noPerm, limit, overQuota, serverBug, nonExistent, alreadyExists, cannot
    /// Any other code (COPYUID, HIGHESTMODSEQ, …): name uppercased, argument the raw text up to "]".
    case other(name: String, argument: String?)
}

/// `OK`/`NO`/`BAD`/`PREAUTH`/`BYE`, an optional response code and the human-readable text.
public struct IMAPCondition: Sendable, Equatable {
    public var status: IMAPStatus
    public var code: IMAPResponseCode?
    public var text: String

    public init(status: IMAPStatus, code: IMAPResponseCode? = nil, text: String) {
        self.status = status
        self.code = code
        self.text = text
    }
}

/// One data item of a FETCH response other than a message body (RFC 3501 §7.4.2).
public enum FetchAttribute: Sendable, Equatable {
    case uid(UID)
    case rfc822Size(UInt64)
    /// Flags keep their case as sent, e.g. `"\\Seen"`, `"$POP3Deleted"`.
    case flags([String])
    /// `INTERNALDATE "17-Jul-1996 02:44:25 -0700"`: the calendar day as written (the zone is not
    /// applied; a day's precision is all the gateway needs).
    case internalDate(IMAPDay)
    /// Any other attribute (ENVELOPE, MODSEQ, …), its value skipped. The name is uppercased.
    case other(name: String)
}

/// A calendar day, counted from 1970-01-01 (day 0), from an IMAP date (RFC 3501 §9 `date-time`).
public struct IMAPDay: Sendable, Hashable, Comparable {
    public var daysSince1970: Int

    public init(daysSince1970: Int) { self.daysSince1970 = daysSince1970 }

    /// The proleptic Gregorian day of `year`-`month`-`day` (month 1...12); nil for an impossible date.
    public init?(year: Int, month: Int, day: Int) {
        guard (1...12).contains(month), day >= 1, day <= Self.daysIn(month: month, year: year), (1...9999).contains(year) else { return nil }
        // Days from the civil date, counted in eras of 400 years (the Gregorian cycle), March-based years.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        daysSince1970 = era * 146_097 + doe - 719_468
    }

    /// `dd-Mon-yyyy` with a 1- or 2-digit (or space-padded) day and an English month name in any case.
    public init?(imapDate bytes: some Collection<UInt8>) {
        let parts = bytes.split(separator: UInt8(ascii: "-"), maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        let dayText = parts[0].drop { $0 == 0x20 }
        let yearText = parts[2].prefix { $0 != 0x20 }
        guard (1...2).contains(dayText.count), yearText.count == 4,
              let day = Self.number(dayText), let year = Self.number(yearText) else { return nil }
        let name = String(decoding: parts[1].map(ASCII.lowercased), as: UTF8.self)
        guard let month = Self.months.firstIndex(of: name) else { return nil }
        self.init(year: year, month: month + 1, day: day)
    }

    public static func < (a: IMAPDay, b: IMAPDay) -> Bool { a.daysSince1970 < b.daysSince1970 }

    /// `1-Nov-2026`: the form SEARCH SINCE takes.
    public var imapDate: String {
        // Civil from days (the inverse of init(year:month:day:)).
        let z = daysSince1970 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        let name = Self.months[month - 1]
        return "\(day)-\(name.prefix(1).uppercased())\(name.dropFirst())-\(year)"
    }

    static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    private static func number(_ bytes: some Collection<UInt8>) -> Int? {
        var value = 0
        for byte in bytes {
            guard byte >= 0x30 && byte <= 0x39 else { return nil }
            value = value * 10 + Int(byte - 0x30)
        }
        return value
    }
}

/// One event of the server's response stream.
///
/// FETCH responses are streamed: a message body is never buffered whole.
///
///     S: * 2 FETCH (UID 7 BODY[] {5}
///     S: hello)
///
/// gives `fetchBegin(2)`, `fetchAttribute(.uid(7))`, `fetchBodyBegin(section: "", origin: nil, size: 5)`,
/// one or more `fetchBodyBytes`, `fetchBodyEnd`, `fetchEnd`.
public enum IMAPResponse: Sendable, Equatable {
    /// `+ text` or `+` alone (text ""); for AUTHENTICATE the text is the base64 challenge.
    case continuationRequest(text: String)
    /// `A1 OK [CODE] text`
    case tagged(IMAPTag, IMAPCondition)
    /// `* OK/NO/BAD/PREAUTH/BYE [CODE] text`
    case untagged(IMAPCondition)
    /// `* CAPABILITY ...`, names uppercased.
    case capability([String])
    case exists(UInt32)
    case recent(UInt32)
    case expunge(SequenceNumber)
    /// `* FLAGS (...)`, flags as sent.
    case flags([String])
    /// `* 12 FETCH (`
    case fetchBegin(SequenceNumber)
    case fetchAttribute(FetchAttribute)
    /// `BODY[section]<origin>` followed by a literal (`size` octets follow as `fetchBodyBytes`), a quoted
    /// string (`size` is its byte count) or NIL (`size` nil, no bytes). Always followed by `fetchBodyEnd`.
    case fetchBodyBegin(section: String, origin: UInt64?, size: Int?)
    /// A chunk of the body, at most `Options.maxBodyChunk` bytes, emitted as soon as bytes are available.
    case fetchBodyBytes([UInt8])
    case fetchBodyEnd
    /// The closing ")" of FETCH and its CRLF.
    case fetchEnd
    /// `* LIST (\HasNoChildren \Trash) "/" Deleted` (RFC 3501 §7.2.2; special-use attributes RFC 6154).
    /// A LIST whose mailbox name is sent as a literal comes as `.other(keyword: "LIST")`.
    case list(MailboxListing)
    /// `* NAMESPACE (("" "/")) NIL NIL` (RFC 2342): the personal namespaces, first the one the server
    /// puts new personal folders in. The other users' and shared namespaces are not kept.
    case namespace(personal: [Namespace])
    /// Any other untagged response (LIST, STATUS, ENABLED, VANISHED, ID, unknown…), fully consumed.
    /// The keyword is uppercased.
    case other(keyword: String)
}

/// One `LIST` response: a mailbox, its attributes and its hierarchy delimiter.
public struct MailboxListing: Sendable, Equatable {
    /// Attributes as sent, e.g. `["\\HasNoChildren", "\\Trash"]`.
    public var attributes: [String]
    /// The hierarchy delimiter, nil for `NIL` (a flat namespace).
    public var delimiter: String?
    /// The name as sent (modified UTF-7, RFC 3501 §5.1.3); `ModifiedUTF7.decode` gives the Unicode name.
    public var name: String

    public init(attributes: [String], delimiter: String?, name: String) {
        self.attributes = attributes
        self.delimiter = delimiter
        self.name = name
    }

    /// Whether `attribute` (e.g. `\Trash`) is among the attributes; attributes are case-insensitive.
    public func has(_ attribute: String) -> Bool {
        attributes.contains { ASCII.equalsIgnoringCase($0.utf8, attribute.utf8) }
    }
}

/// One namespace of a `NAMESPACE` response (RFC 2342 §5): `("INBOX." ".")`.
public struct Namespace: Sendable, Equatable {
    /// As sent (modified UTF-7), e.g. `"INBOX."` or `""`.
    public var prefix: String
    /// nil for `NIL`.
    public var delimiter: String?

    public init(prefix: String, delimiter: String?) {
        self.prefix = prefix
        self.delimiter = delimiter
    }
}

/// Why the response stream cannot be parsed. After any of these the connection is unusable.
public enum IMAPParseError: Error, Sendable, Equatable {
    /// A line (or the part of one between literals) exceeded `Options.maxLineLength`.
    case lineTooLong
    /// A literal other than a message body exceeded `Options.maxLiteralSize`.
    case literalTooLarge
    /// The bytes do not follow the grammar; the text says where (sanitised, safe to log).
    case malformed(String)
}
