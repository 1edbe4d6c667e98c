/// The capability names (RFC 3501 §7.2.1) the gateway decides on, as they appear in
/// `IMAPResponse.capability` and `ResponseCode.capability` lists (uppercased by the parser).
public enum Capability {
    /// RFC 7888: non-synchronising literals, so a command with a literal can go in one flight.
    public static let literalPlus = "LITERAL+"
    /// RFC 2971: the client's address can be forwarded before login.
    public static let id = "ID"
    public static let authPlain = "AUTH=PLAIN"
    /// RFC 4959: AUTHENTICATE with an initial response, so the login needs no continuation.
    public static let saslIR = "SASL-IR"
    /// RFC 3501 §6.2.3: LOGIN is refused.
    public static let loginDisabled = "LOGINDISABLED"
    /// RFC 4315: UID EXPUNGE, so only our own deletions are expunged.
    public static let uidPlus = "UIDPLUS"
    /// RFC 6851: UID MOVE.
    public static let move = "MOVE"
    /// RFC 6154: mailboxes carry special-use attributes such as `\Trash`.
    public static let specialUse = "SPECIAL-USE"
    /// RFC 5258: LIST with selection and return options (`RETURN (SPECIAL-USE)`).
    public static let listExtended = "LIST-EXTENDED"
    /// RFC 2342: NAMESPACE.
    public static let namespace = "NAMESPACE"
}
