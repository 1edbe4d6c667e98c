import Gateway
import IMAP
import Wire
import XCTest

/// Drives a `GatewaySession` like the driver does and records what it sends, so tests read like
/// protocol transcripts: `C:` lines in, `S:` lines out, and the IMAP exchange on the other side.
/// The IMAP lines are shaped like Dovecot's; claims about real Dovecot live in Tests/integration.
struct SessionTranscript {
    var session: GatewaySession
    var clientOutput: [UInt8] = []
    var backendOutput: [UInt8] = []
    var actions: [SessionAction] = []
    /// What the daemon's per-client table answers to `.lookUpAuthPenalty`.
    var penalty: Duration = .zero
    /// What the router answers to `.resolveRoute`.
    var routeDecision: RouteDecision
    /// The requests the router got.
    private(set) var routeRequests: [RouteRequest] = []

    static let backend = BackendTarget(host: "imap.test", port: 993)
    /// What the daemon's UIDL history answers to `.lookUpUIDLHistory` (nil: no earlier session).
    var previousUIDLs: UIDLSample?
    /// What the daemon's per-user table answers to `.lookUpUserLimits` (checks and claims alike).
    var userAdmission: UserAdmission = .admitted
    /// Answer `.requestClientWritable` at once, as the driver does for a client that reads; false
    /// plays a client that never reads (the request stays pending).
    var clientReads = true
    private(set) var pendingWritableRequests = 0

    init(settings: GatewaySettings = GatewaySettings(authFailureDelay: .seconds(2)),
         listener: ListenerContext = ListenerContext(tlsActive: true, startTLSAvailable: false, plaintextAuthAllowed: false),
         client: ClientContext = ClientContext(),
         policy: SessionPolicy = SessionPolicy(), backend: BackendTarget = SessionTranscript.backend) {
        routeDecision = .route(Route(backend: backend, policy: policy))
        session = GatewaySession(settings: settings, listener: listener, client: client)
        record(session.start())
    }

    /// Records actions and, like the driver, answers the ones that ask the daemon something: one after
    /// another, not recursively (the driver answers `.requestClientWritable` on a later loop turn).
    mutating func record(_ new: [SessionAction]) {
        var batch = new
        while !batch.isEmpty {
            var replies: [SessionEvent] = []
            for action in batch {
                switch action {
                case .sendToClient(let bytes): clientOutput += bytes
                case .sendToBackend(let bytes): backendOutput += bytes
                case .lookUpAuthPenalty: replies.append(.authPenaltyLookedUp(penalty))
                case .resolveRoute(let request):
                    routeRequests.append(request)
                    replies.append(.routeResolved(routeDecision))
                case .lookUpUIDLHistory: replies.append(.uidlHistoryLookedUp(previousUIDLs))
                case .lookUpUserLimits: replies.append(.userLimitsLookedUp(userAdmission))
                case .requestClientWritable:
                    if clientReads { replies.append(.clientWritable) } else { pendingWritableRequests += 1 }
                default: break
                }
            }
            actions += batch
            batch = replies.flatMap { session.handle($0) }
        }
    }

    /// The client reads: answers the writable requests that waited.
    mutating func clientTookOutput() {
        let pending = pendingWritableRequests
        pendingWritableRequests = 0
        for _ in 0..<pending { send(.clientWritable) }
    }

    mutating func send(_ event: SessionEvent) { record(session.handle(event)) }
    mutating func client(_ text: String) { send(.clientDataReceived(Array(text.utf8))) }
    mutating func backend(_ text: String) { send(.backendDataReceived(Array(text.utf8))) }

    /// What the client received since the last call.
    mutating func takeClient() -> String {
        defer { clientOutput = [] }
        return String(decoding: clientOutput, as: UTF8.self)
    }

    mutating func takeBackend() -> String {
        defer { backendOutput = [] }
        return String(decoding: backendOutput, as: UTF8.self)
    }

    mutating func takeActions() -> [SessionAction] {
        defer { actions = [] }
        return actions
    }

    func contains(_ action: SessionAction) -> Bool { actions.contains(action) }

    /// The machine asked the driver to connect a backend (to any server).
    var connectsBackend: Bool {
        actions.contains { if case .connectBackend = $0 { true } else { false } }
    }

    var ended: SessionSummary? {
        for case .sessionEnded(let summary) in actions { return summary }
        return nil
    }

    static let greeting = "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot (Debian) ready.\r\n"
    static let loggedIn = "OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT THREAD=REFERENCES MULTIAPPEND UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH LITERAL+ BINARY MOVE] Logged in\r\n"

    /// Sends the client's login lines, connects the backend and greets like Dovecot; what the client
    /// was told so far is dropped, what the machine then sent the backend is left to the test.
    mutating func reachBackend(_ clientLines: String = "USER alice\r\nPASS secret\r\n", encrypted: Bool = true) {
        client(clientLines)
        _ = takeClient()
        send(.backendConnected(encrypted: encrypted))
        backend(Self.greeting)
    }

    /// The login flight after a Dovecot greeting (SASL-IR, AUTH=PLAIN): credentials, SELECT and the
    /// snapshot FETCH in one write, tags from `first` on.
    static func loginFlight(user: String = "alice", password: String = "secret", first: Int = 1) -> String {
        let payload = String(decoding: Base64.encode(Array("\0\(user)\0\(password)".utf8)), as: UTF8.self)
        return "P\(first) AUTHENTICATE PLAIN \(payload)\r\nP\(first + 1) SELECT \"INBOX\"\r\nP\(first + 2) UID FETCH 1:* (UID RFC822.SIZE FLAGS)\r\n"
    }

    /// Dovecot's answer to SELECT (tag P2) of a mailbox with `exists` messages.
    static func selected(exists: Int, uidValidity: UInt32 = 1_732_780_000, tag: String = "P2") -> String {
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.\r\n"
            + "* \(exists) EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY \(uidValidity)] UIDs valid\r\n* OK [UIDNEXT 100] Predicted next UID\r\n\(tag) OK [READ-WRITE] Select completed (0.001 + 0.000 secs).\r\n"
    }

    /// USER/PASS through a Dovecot-shaped login: one flight of AUTHENTICATE, SELECT and the snapshot
    /// FETCH of `messages` (uid, size, flags), answered in order.
    /// `sentUser`: the name the backend gets, when the route rewrites the client's.
    mutating func logIn(user: String = "alice", password: String = "secret",
                        messages: [(UInt32, UInt64, String)], uidValidity: UInt32 = 1_732_780_000,
                        loginResponse: String = SessionTranscript.loggedIn, sentUser: String? = nil) {
        XCTAssertEqual(takeClient(), "+OK PopGate POP3 gateway ready.\r\n")
        client("USER \(user)\r\n")
        XCTAssertEqual(takeClient(), "+OK Send your password.\r\n")
        client("PASS \(password)\r\n")
        XCTAssertTrue(connectsBackend)
        send(.backendConnected(encrypted: true))
        backend(Self.greeting)
        XCTAssertEqual(takeBackend(), Self.loginFlight(user: sentUser ?? user, password: password))
        backend("P1 " + loginResponse)
        backend(Self.selected(exists: messages.count, uidValidity: uidValidity))
        var answer = ""
        for (index, message) in messages.enumerated() {
            answer += "* \(index + 1) FETCH (UID \(message.0) RFC822.SIZE \(message.1) FLAGS (\(message.2)))\r\n"
        }
        backend(answer + "P3 OK Fetch completed (0.001 + 0.000 secs).\r\n")
        XCTAssertEqual(takeBackend(), "", "nothing more than the one flight")
        XCTAssertEqual(takeClient(), "+OK Logged in.\r\n")
    }
}
