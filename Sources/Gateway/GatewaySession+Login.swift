import IMAP
import POP3
import Wire

/// Logging in to the backend as the user, selecting the maildrop folder and taking the snapshot.
///
/// With SASL-IR and AUTH=PLAIN in the greeting's capabilities, the whole login is one flight (one
/// write, one round trip):
///
///     S: * OK [CAPABILITY IMAP4rev1 SASL-IR ID LITERAL+ AUTH=PLAIN ...] ready
///     C: P1 ID ("x-originating-ip" "203.0.113.7" ...)
///     C: P2 AUTHENTICATE PLAIN <base64>
///     C: P3 SELECT "INBOX"
///     C: P4 UID FETCH 1:* (UID RFC822.SIZE FLAGS)
///     S: * ID (...)   P1 OK ID completed.
///     S: P2 OK [CAPABILITY IMAP4rev1 ... UIDPLUS MOVE] Logged in
///     S: * 3 EXISTS   * OK [UIDVALIDITY 1732780000] ...   P3 OK [READ-WRITE] ...
///     S: * 1 FETCH (UID 1 RFC822.SIZE 1234 FLAGS ()) ...  P4 OK
///
/// The server answers in command order, so the step whose tagged answer comes next (`Login.step`)
/// owns the untagged responses that arrive meanwhile. When the login fails, SELECT and FETCH fail
/// harmlessly on an unauthenticated connection, and their answers are dropped with the link.
///
/// Before any of it, the client's address may have to wait out its auth penalty (`penalty`), then the
/// router says where the login goes (`routing`: the backend, the login name, the session's policy), and
/// when the backend advertises `ID` the client's address goes ahead of the credentials in the same flight.
struct Login: Sendable {
    enum Step: Sendable, Equatable {
        case penalty, userCheck, routing, connecting, greeting, startTLS, tlsHandshake, capability, authenticate, postLoginCapability, select, snapshot
        /// `move_to: auto`: `LIST "" "*"` (its answers' attributes), the same `RETURN (SPECIAL-USE)`,
        /// `NAMESPACE`. Never `Login.step`: their answers are taken out of order (`Login.discovery`).
        case trashList, specialUseList, namespace

        var isDiscovery: Bool { self == .trashList || self == .specialUseList || self == .namespace }
        /// The backend accepted the login and everything is in: the per-user table counts it (or refuses).
        case userClaim
    }

    /// What the client gave; the backend gets them after the route's rewrites.
    var credentials: SASLPlain
    var step: Step = .penalty
    /// Recent mode: the maildrop is the messages received since the route's `recentSince`.
    var recent = false
    /// The name the per-user limits count (`limitedUser`), taken from what the client gave, before a
    /// route rewrites the login: the check and the claim must count the same name.
    var limitsUser = ""
    var encrypted = false
    var startTLSDone = false
    /// AUTHENTICATE PLAIN without SASL-IR: the payload waits for the continuation request.
    var pendingPayload: Secret?
    /// Commands sent behind `step`'s in the same flight, oldest first: their tagged answers follow
    /// its answer in this order.
    var inFlight: [SentStep] = []
    /// What QUIT will do, decided from the post-login capabilities before the maildrop goes live.
    var plan: RetentionPlan?
    var uidValidity: UIDValidity?
    /// SELECT's PERMANENTFLAGS, when it sent them (RFC 3501 §7.1: without them all flags are permanent).
    var permanentFlags: [String]?
    var exists: UInt32 = 0
    /// SELECT answered OK.
    var selected = false
    /// The snapshot FETCH answered: OK, or refused on a mailbox SELECT found empty.
    var snapshotTaken = false
    /// `move_to: auto`: what the backend said about its trash folder so far.
    var trash = TrashDiscovery()
    /// LIST and NAMESPACE on the wire: a server may answer them out of order (RFC 3501 §5.5 lets it run
    /// commands that do not depend on each other at once, and Dovecot answers a LIST before a FETCH it
    /// is still streaming), so their answers are taken whenever they come, not in `inFlight`'s order.
    var discovery: [SentStep] = []
}

/// Finding the folder for `on_delete: move` with `move_to: auto`, from the answers of the login's flights:
/// the mailbox with the special-use `\Trash` attribute (RFC 6154), else the first personal namespace's
/// prefix (RFC 2342) + `Trash`, else `Trash`.
struct TrashDiscovery: Sendable, Equatable {
    /// The answers that came (a refusal counts: the server cannot tell more that way).
    var listAnswered = false
    var specialUseListAnswered = false
    var namespaceAnswered = false
    /// The first selectable mailbox listed with `\Trash`, decoded from modified UTF-7.
    var specialUse: String?
    var personalPrefix: String?

    enum Source: String, Sendable { case specialUse = "special-use", namespace, fallback = "default" }

    var folder: (name: String, source: Source) {
        if let specialUse { return (specialUse, .specialUse) }
        if let personalPrefix, !personalPrefix.isEmpty { return (personalPrefix + "Trash", .namespace) }
        return ("Trash", .fallback)
    }
}

/// A login command on the wire whose tagged answer is still to come.
struct SentStep: Sendable, Equatable {
    var tag: IMAPTag
    var step: Login.Step
}

/// The snapshot FETCH's answer as it arrives, kept outside the phase enum so appends stay in place.
struct SnapshotBuilder: Sendable {
    /// What the session's policy leaves out of the maildrop: only these flags are kept per message.
    var hidden = Maildrop.Hidden()
    /// Recent mode: messages that arrived before this day are left out.
    var since: IMAPDay?
    /// The login waits for the snapshot FETCH's answer (`Login.step == .snapshot`); kept in step with the
    /// phase by `GatewaySession.phase`'s observer.
    var collecting = false
    var fetched: [FetchedSummary] = []
    /// FETCH responses seen, solicited or not: a backend that sends more than `limits.maxMessages` is
    /// cut off instead of growing this array without bound.
    var responses = 0
    var current: PartialSummary?
    /// `uidl_source: header`: usable `X-UIDL` values by UID, packed (nothing is kept for messages without one).
    var headerUIDLs = HeaderUIDLs()
    /// `X-UIDL` headers that were there but not usable (too long, spaces, 8-bit, folded).
    var unusableHeaderUIDLs = 0
    /// The current message's `BODY[HEADER.FIELDS (X-UIDL)]`, at most `HeaderFieldScanner.capacity` bytes.
    var header: HeaderFieldScanner?
    var readingHeader = false
}

struct PartialSummary: Sendable {
    var uid: UID?
    var size: UInt64?
    /// Only the flags the snapshot decides on (`\Deleted`, the retention keyword), not the whole list.
    var flags: [String] = []
    var day: IMAPDay?
}

/// What QUIT does with DELE'd messages, fixed at login: a capability list the backend sends later
/// can no longer change it (or make QUIT skip deletions while answering `+OK`).
struct RetentionPlan: Sendable, Equatable {
    var onDelete: RetentionPolicy.OnDelete
    /// `UID MOVE` is available; without it `move` is COPY + STORE \Deleted + UID EXPUNGE.
    var hasMove: Bool
    /// Where `move` moves to: `retention.move_to`, or for `auto` the folder found at login.
    var moveTo: String = "Trash"
}

/// How a login failure is answered: the error says what to do next (`[AUTH]` try again,
/// `[SYS/TEMP]` later, `[SYS/PERM]` call the provider).
struct LoginFailure: Sendable {
    var code: ResponseCode
    var text: String
    /// Wrong credentials: answered only after the failure delay.
    var delayed: Bool
    var log: String
    /// Replaces `authFailureDelay` for a delayed failure (a routing service's `Auth-Wait`).
    var delay: Duration? = nil
    /// Close the connection after the answer, whatever the failure count (a routing service's
    /// refusal without `Auth-Wait`, as nginx does).
    var close = false
    /// Refused by a per-user limit of the gateway, not by the backend (not counted as a backend error).
    var refusal = false

    static func temporary(_ log: String) -> LoginFailure {
        LoginFailure(code: .sysTemp, text: "Backend server unavailable, try again later.", delayed: false, log: log)
    }

    static func permanent(_ text: String, log: String) -> LoginFailure {
        LoginFailure(code: .sysPerm, text: text, delayed: false, log: log)
    }
}

extension GatewaySession {
    /// A login starts by asking how long this client's address must wait: the penalty comes before the
    /// backend is asked, so a brute-forcer who gives up early learns nothing and costs the backend nothing.
    mutating func beginLogin(_ credentials: SASLPlain) -> [SessionAction] {
        var credentials = credentials
        // Recent mode (Gmail's): `recent:alice@example.com` lists the last 30 days, popped or not.
        let recent = Self.recentPrefix(of: credentials.authenticationIdentity)
        if recent {
            let user = String(credentials.authenticationIdentity.dropFirst(Self.recentModePrefix.count))
            if credentials.authorizationIdentity == credentials.authenticationIdentity { credentials.authorizationIdentity = user }
            credentials.authenticationIdentity = user
        }
        summary.user = credentials.authenticationIdentity
        var login = Login(credentials: credentials)
        login.recent = recent
        login.limitsUser = Self.limitedUser(credentials)
        phase = .login(login)
        return [.lookUpAuthPenalty]
    }

    /// The login prefix of recent mode.
    public static let recentModePrefix = "recent:"

    static func recentPrefix(of user: String) -> Bool {
        let prefix = recentModePrefix.utf8
        return user.utf8.count > prefix.count && ASCII.equalsIgnoringCase(user.utf8.prefix(prefix.count), prefix)
    }

    mutating func authPenaltyLookedUp(_ delay: Duration) -> [SessionAction] {
        guard case .login(let login) = phase, login.step == .penalty else { return [] }
        guard delay > .zero else { return checkUserLimits() }
        return [
            .log(LogRecord(.info, "login delayed by the auth penalty of this address", fields: [LogKey.delay: "\(delay)"])),
            .scheduleTimer(.authPenalty, after: delay),
        ]
    }

    mutating func authPenaltyElapsed() -> [SessionAction] {
        guard case .login(let login) = phase, login.step == .penalty else { return [] }
        return checkUserLimits()
    }

    /// The mailbox user the per-user limits count: the authorization identity when one is given (the
    /// mailbox logged in to), else the authentication identity.
    static func limitedUser(_ credentials: SASLPlain) -> String {
        credentials.authorizationIdentity.isEmpty ? credentials.authenticationIdentity : credentials.authorizationIdentity
    }

    /// After the auth penalty, before the backend: a user at `limits.sessions_per_user` or inside
    /// `limits.login_interval` is refused here, costing the backend nothing.
    mutating func checkUserLimits() -> [SessionAction] {
        guard case .login(var login) = phase, settings.limits.userLimitsActive else { return resolveRoute() }
        login.step = .userCheck
        phase = .login(login)
        return [.lookUpUserLimits(user: login.limitsUser, claim: false)]
    }

    mutating func userLimitsLookedUp(_ admission: UserAdmission) -> [SessionAction] {
        guard case .login(let login) = phase, login.step == .userCheck || login.step == .userClaim else { return [] }
        if login.step == .userClaim && admission == .admitted {
            claimedUser = login.limitsUser
            return finishLogin()
        }
        switch admission {
        case .admitted:
            return resolveRoute()
        case .inUse:
            return loginFailed(LoginFailure(code: .inUse, text: "Too many sessions of this user are open; try again later.", delayed: false,
                                            log: "limits.sessions_per_user (\(settings.limits.sessionsPerUser)) reached", refusal: true))
        case .loginDelay:
            return loginFailed(LoginFailure(code: .loginDelay, text: "Logged in too recently; try again later.", delayed: false,
                                            log: "limits.login_interval (\(settings.limits.loginInterval)) not over since the last login", refusal: true))
        }
    }

    /// The per-user count is given back: at the end of a session, or when a login fails after its claim.
    mutating func releaseUser() -> [SessionAction] {
        guard let user = claimedUser else { return [] }
        claimedUser = nil
        return [.releaseUser(user)]
    }

    /// Asks the router where this login goes. The backend timeout also bounds the wait for the answer
    /// (a routing service that never answers is a backend outage to the client: `[SYS/TEMP]`).
    mutating func resolveRoute() -> [SessionAction] {
        guard case .login(var login) = phase else { return [] }
        login.step = .routing
        phase = .login(login)
        let request = RouteRequest(user: login.credentials.authenticationIdentity, password: login.credentials.password,
                                   attempt: authFailures + 1, clientAddress: client.address, recent: login.recent)
        return [.resolveRoute(request), .scheduleTimer(.backend, after: settings.backendTimeout)]
    }

    mutating func routeResolved(_ decision: RouteDecision) -> [SessionAction] {
        guard case .login(var login) = phase, login.step == .routing else { return [] }
        switch decision {
        case .route(let route):
            self.route = route
            summary.route = route.name
            var credentials = login.credentials
            let given = credentials.authenticationIdentity
            let user = route.login.apply(to: route.user ?? given)
            credentials.authenticationIdentity = user
            // An authorization identity that named the user themself follows the rewrite.
            if credentials.authorizationIdentity == given { credentials.authorizationIdentity = user }
            if let password = route.password { credentials.password = password }
            login.credentials = credentials
            phase = .login(login)
            return connectBackend(route.backend)
        case .refused(let text, let wait):
            return loginFailed(LoginFailure(code: .auth, text: text, delayed: true, log: "the routing service refused the login: \(text)", delay: wait, close: wait == nil))
        case .unavailable(let reason):
            return loginFailed(.temporary("no route: \(reason)"))
        case .noRoute:
            // Answered like wrong credentials: a client must not learn which domains are served here.
            return loginFailed(LoginFailure(code: .auth, text: "Authentication failed.", delayed: true, log: "no route matches this login and there is no default backend"))
        }
    }

    mutating func connectBackend(_ target: BackendTarget) -> [SessionAction] {
        guard case .login(var login) = phase else { return [] }
        login.step = .connecting
        phase = .login(login)
        backend = .connecting
        return [.connectBackend(target), .scheduleTimer(.backend, after: settings.backendTimeout)]
    }

    mutating func backendConnected(encrypted: Bool) -> [SessionAction] {
        guard case .login(var login) = phase else {
            // The client left meanwhile; endSession already asked to close the backend.
            return []
        }
        backend = .connected
        login.step = .greeting
        login.encrypted = encrypted
        phase = .login(login)
        return updateInputPauses()
    }

    mutating func backendTLSEstablished() -> [SessionAction] {
        guard case .login(var login) = phase, login.step == .tlsHandshake else { return [] }
        login.startTLSDone = true
        login.encrypted = true
        phase = .login(login)
        // RFC 3501 §6.2.1: capabilities learned before STARTTLS must be forgotten.
        capabilities = []
        return sendLoginCommand(.capability, step: .capability)
    }

    mutating func sendLoginCommand(_ command: IMAPCommand, step: Login.Step) -> [SessionAction] {
        guard case .login(var login) = phase else { return [] }
        login.step = step
        phase = .login(login)
        return sendIMAP(command)
    }

    /// Sends login commands as one flight: the first is the one whose answer comes next, each later
    /// one goes behind it while it can (`queueLoginCommand`); those that cannot wait for the answers in
    /// flight (`continueLogin` sends them then).
    mutating func sendLoginFlight(_ commands: [(Login.Step, IMAPCommand)]) -> [SessionAction] {
        guard let (step, command) = commands.first else { return [] }
        guard !step.isDiscovery else {
            // Only LIST/NAMESPACE left to ask: nothing else is awaited, so the backend deadline runs for them.
            var actions: [SessionAction] = []
            for (step, command) in commands { actions += queueLoginCommand(command, step: step) }
            return Self.oneWrite(actions + [.scheduleTimer(.backend, after: settings.backendTimeout)])
        }
        var actions = sendLoginCommand(command, step: step)
        for (step, command) in commands.dropFirst() {
            let queued = queueLoginCommand(command, step: step)
            guard !queued.isEmpty else { break }
            actions += queued
        }
        return Self.oneWrite(actions)
    }

    /// Sends `command` behind the commands in flight, its answer awaited after theirs. Nothing is sent
    /// (empty) when a command ahead still waits for a continuation request (its next segment or the
    /// SASL payload would come after this one), or when this one would need a synchronising literal.
    mutating func queueLoginCommand(_ command: IMAPCommand, step: Login.Step) -> [SessionAction] {
        guard case .login(var login) = phase, pendingSegments.isEmpty, login.pendingPayload == nil else { return [] }
        let tag = IMAPTag("P\(tagCounter + 1)")
        let segments = IMAPCommandEncoder.encode(command, tag: tag, literalPlus: capabilities.contains(Capability.literalPlus))
        guard segments.count == 1 else { return [] }
        tagCounter += 1
        if step.isDiscovery {
            login.discovery.append(SentStep(tag: tag, step: step))
        } else {
            login.inFlight.append(SentStep(tag: tag, step: step))
        }
        phase = .login(login)
        return [.sendToBackend(segments[0])]
    }

    /// After a tagged answer: the next answer awaited is the oldest command in flight's. With nothing in
    /// flight the login sends, in one flight, whatever it still lacks, or it is done.
    mutating func continueLogin() -> [SessionAction] {
        guard case .login(var login) = phase else { return [] }
        guard login.inFlight.isEmpty else {
            let next = login.inFlight.removeFirst()
            login.step = next.step
            phase = .login(login)
            currentTag = next.tag
            return [.scheduleTimer(.backend, after: settings.backendTimeout)]
        }
        guard login.discovery.isEmpty else {
            // The rest is in; a LIST or NAMESPACE answer is still to come.
            return [.scheduleTimer(.backend, after: settings.backendTimeout)]
        }
        var commands: [(Login.Step, IMAPCommand)] = []
        if login.plan == nil { commands.append((.postLoginCapability, .capability)) }
        if !login.selected { commands.append((.select, .select(mailbox: settings.mailbox))) }
        if !login.snapshotTaken { commands.append((.snapshot, snapshotFetch(login))) }
        commands += trashDiscovery(login)
        guard !commands.isEmpty else { return finishLogin() }
        return sendLoginFlight(commands)
    }

    static let snapshotFetch = IMAPCommand.uidFetch(UIDSet.all, items: [.uid, .rfc822Size, .flags])
    /// Recent mode also needs each message's arrival day.
    static let recentSnapshotFetch = IMAPCommand.uidFetch(UIDSet.all, items: [.uid, .rfc822Size, .flags, .internalDate])
    /// `uidl_source: header` also asks for the one header field (docs/uidl.md).
    static let snapshotFetchWithHeader = IMAPCommand.uidFetch(UIDSet.all, items: [.uid, .rfc822Size, .flags, .headerFieldsPeek([xUIDL])])
    static let recentSnapshotFetchWithHeader = IMAPCommand.uidFetch(UIDSet.all, items: [.uid, .rfc822Size, .flags, .internalDate, .headerFieldsPeek([xUIDL])])
    static let xUIDL = "X-UIDL"

    func snapshotFetch(_ login: Login) -> IMAPCommand {
        let recent = login.recent && route?.recentSince != nil
        switch (recent, settings.uidlSource == .header) {
        case (false, false): return Self.snapshotFetch
        case (false, true): return Self.snapshotFetchWithHeader
        case (true, false): return Self.recentSnapshotFetch
        case (true, true): return Self.recentSnapshotFetchWithHeader
        }
    }

    /// What the snapshot leaves out: the policy's hidden flags, and in recent mode only what is
    /// deleted (a message already popped is listed again if it is recent).
    func snapshotBuilder(_ login: Login) -> SnapshotBuilder {
        guard login.recent, let since = route?.recentSince else { return SnapshotBuilder(hidden: Maildrop.Hidden(policy)) }
        let retention = policy.retention
        return SnapshotBuilder(hidden: Maildrop.Hidden(keywords: retention.onDelete == .flag ? [retention.flagKeyword] : []), since: since)
    }

    /// A flight as one write: the driver writes each `.sendToBackend` as it comes, so separate actions
    /// would leave as separate TCP segments (and TLS records). Only sends with nothing but timers
    /// between them are joined, so no send moves past anything that acts on the connection.
    static func oneWrite(_ actions: [SessionAction]) -> [SessionAction] {
        var result: [SessionAction] = []
        var joining: Int?
        for action in actions {
            switch action {
            case .sendToBackend(let bytes):
                if let index = joining, case .sendToBackend(let earlier) = result[index] {
                    result[index] = .sendToBackend(earlier + bytes)
                } else {
                    joining = result.count
                    result.append(action)
                }
            case .scheduleTimer:
                result.append(action)
            default:
                joining = nil
                result.append(action)
            }
        }
        return result
    }

    /// Untagged responses and continuation requests during login.
    mutating func loginResponse(_ response: IMAPResponse) -> [SessionAction] {
        switch response {
        case .list(let listing): return trashListed(listing)
        case .namespace(let personal): return namespaceListed(personal)
        default: break
        }
        // The snapshot's events (five per message) go straight to the builder: taking `Login` out of the
        // phase for each would copy it and retain its strings half a million times for 100,000 messages.
        if snapshot.collecting { return snapshotResponse(response) }
        guard case .login(var login) = phase else { return [] }
        switch (login.step, response) {
        case (.greeting, .untagged(let condition)):
            switch condition.status {
            case .ok:
                return afterGreeting()
            case .preauth:
                return loginFailed(.permanent("Backend misconfigured.", log: "backend greeted with PREAUTH"))
            case .bye, .no, .bad:
                return loginFailed(.temporary("backend refused the connection: \(ASCII.sanitized(Array(condition.text.utf8)))"))
            }
        case (.authenticate, .continuationRequest):
            // AUTHENTICATE PLAIN without SASL-IR: the server asks for the payload; a second ask cancels.
            let payload = login.pendingPayload ?? Secret("*")
            login.pendingPayload = nil
            phase = .login(login)
            return [.sendToBackend(IMAPCommandEncoder.continuationResponse(payload))]
        case (.select, .exists(let count)):
            login.exists = count
            phase = .login(login)
            guard Int(count) <= settings.limits.maxMessages else {
                return loginFailed(.permanent("Mailbox too large for POP3.", log: "\(count) messages exceed limits.max_messages"))
            }
        case (.select, .untagged(let condition)):
            switch condition.code {
            case .uidValidity(let value)?:
                login.uidValidity = value
                phase = .login(login)
            case .permanentFlags(let flags)?:
                login.permanentFlags = flags
                phase = .login(login)
            default:
                break
            }
        case (.snapshot, _):
            return snapshotResponse(response)
        default:
            break
        }
        return []
    }

    /// A LIST answer, whenever it comes during login (only `move_to: auto` asks for one): the first
    /// selectable mailbox with `\Trash`; a server may mark more than one (RFC 6154 §2).
    mutating func trashListed(_ listing: MailboxListing) -> [SessionAction] {
        guard case .login(var login) = phase, !login.discovery.isEmpty, login.trash.specialUse == nil,
              listing.has("\\Trash"), !listing.has("\\Noselect"), !listing.has("\\NonExistent"),
              let name = ModifiedUTF7.decode(listing.name) else { return [] }
        login.trash.specialUse = name
        phase = .login(login)
        return []
    }

    mutating func namespaceListed(_ personal: [Namespace]) -> [SessionAction] {
        guard case .login(var login) = phase, !login.discovery.isEmpty, login.trash.personalPrefix == nil,
              let first = personal.first, let prefix = ModifiedUTF7.decode(first.prefix) else { return [] }
        login.trash.personalPrefix = prefix
        phase = .login(login)
        return []
    }

    /// The tagged answer of a LIST or NAMESPACE the login sent, in whatever order it comes; nil for any
    /// other tag. A refusal (no NAMESPACE, no LIST-EXTENDED after all) counts as answered: the next way is
    /// tried. When it was the last answer awaited, the login goes on.
    mutating func discoveryAnswered(_ tag: IMAPTag) -> [SessionAction]? {
        guard case .login(var login) = phase, let index = login.discovery.firstIndex(where: { $0.tag == tag }) else { return nil }
        switch login.discovery.remove(at: index).step {
        case .trashList: login.trash.listAnswered = true
        case .specialUseList: login.trash.specialUseListAnswered = true
        default: login.trash.namespaceAnswered = true
        }
        phase = .login(login)
        guard currentTag == nil, login.inFlight.isEmpty, login.discovery.isEmpty else { return [] }
        return [.cancelTimer(.backend)] + continueLogin()
    }

    /// One event of the snapshot FETCH. A backend that sends more responses than any mailbox we accept,
    /// or sizes no message has, is broken or hostile: the login fails before memory or sums run away.
    mutating func snapshotResponse(_ response: IMAPResponse) -> [SessionAction] {
        switch response {
        case .fetchBegin:
            snapshot.responses += 1
            guard snapshot.responses <= settings.limits.maxMessages else {
                return loginFailed(.temporary("snapshot FETCH sent more than limits.max_messages (\(settings.limits.maxMessages)) responses"))
            }
            snapshot.current = PartialSummary()
            snapshot.header = nil
            snapshot.readingHeader = false
        case .fetchAttribute(.uid(let uid)):
            snapshot.current?.uid = uid
        case .fetchAttribute(.rfc822Size(let size)):
            guard size <= settings.limits.maxMessageSize else {
                return loginFailed(.temporary("snapshot FETCH gave RFC822.SIZE \(size), above \(settings.limits.maxMessageSize)"))
            }
            snapshot.current?.size = size
        case .fetchAttribute(.flags(let flags)):
            let hidden = snapshot.hidden
            snapshot.current?.flags = flags.filter { hidden.hides($0) }
        case .fetchAttribute(.internalDate(let day)):
            snapshot.current?.day = day
        case .fetchBodyBegin(let section, _, _):
            guard settings.uidlSource == .header, Self.isHeaderFieldsSection(section) else { break }
            snapshot.header = HeaderFieldScanner()
            snapshot.readingHeader = true
        case .fetchBodyBytes(let bytes):
            if snapshot.readingHeader { snapshot.header?.feed(bytes) }
        case .fetchBodyEnd:
            snapshot.readingHeader = false
        case .fetchEnd:
            // Unsolicited FETCH (flag changes) lack the size: not part of the answer. In recent mode a
            // message older than the window (or without a date) is left out here, before it costs memory.
            if let current = snapshot.current, let uid = current.uid, let size = current.size,
               snapshot.since.map({ since in current.day.map { $0 >= since } ?? false }) ?? true {
                snapshot.fetched.append(FetchedSummary(uid: uid, size: size, flags: current.flags))
                if let header = snapshot.header { takeHeaderUIDL(header, uid: uid) }
            }
            snapshot.current = nil
            snapshot.header = nil
        default:
            break
        }
        return []
    }

    /// Keeps a message's `X-UIDL` value when it can be a UIDL (`HeaderUIDLs.isUsable`); a header that is
    /// there but unusable is counted (logged at login) and the message gets its format UIDL.
    mutating func takeHeaderUIDL(_ header: HeaderFieldScanner, uid: UID) {
        if let value = header.value(of: Self.xUIDL), HeaderUIDLs.isUsable(value) {
            snapshot.headerUIDLs.append(key: uid.rawValue, value)
        } else if header.byteCount > 2 {
            // More than the blank line that ends an empty answer: a field was there.
            snapshot.unusableHeaderUIDLs += 1
        }
    }

    /// `HEADER.FIELDS (...)`, as the server echoes the section (not `HEADER.FIELDS.NOT`).
    static func isHeaderFieldsSection(_ section: String) -> Bool {
        ASCII.equalsIgnoringCase(section.utf8.prefix(14), "HEADER.FIELDS ".utf8)
    }

    mutating func afterGreeting() -> [SessionAction] {
        guard case .login(let login) = phase else { return [] }
        if route?.backend.tls == .starttls && !login.startTLSDone {
            return sendLoginCommand(.starttls, step: .startTLS)
        }
        if capabilities.isEmpty {
            return sendLoginCommand(.capability, step: .capability)
        }
        return authenticate()
    }

    mutating func authenticate() -> [SessionAction] {
        guard case .login(let login) = phase else { return [] }
        guard login.encrypted || route?.backend.tls == BackendTarget.TLSMode.none else {
            return loginFailed(.permanent("Backend connection is not secure.", log: "refusing to send a password over an unencrypted backend connection (set backend.tls: none to allow)"))
        }
        return Self.oneWrite(forwardClientAddress() + sendCredentials())
    }

    /// RFC 2971 `ID` with the client's address, ahead of the credentials in the same flight. A backend
    /// that trusts the gateway (Dovecot: `login_trusted_networks`) then logs `rip=<client>` and applies
    /// its own auth penalty to the client instead of to every user behind the gateway.
    mutating func forwardClientAddress() -> [SessionAction] {
        guard route?.backend.forwardClient ?? false, capabilities.contains(Capability.id), let address = client.address else { return [] }
        var fields = [IDField("x-originating-ip", address)]
        if let port = client.port { fields.append(IDField("x-originating-port", String(port))) }
        if let local = client.localAddress { fields.append(IDField("x-connected-ip", local)) }
        if let port = client.localPort { fields.append(IDField("x-connected-port", String(port))) }
        if let id = client.sessionID { fields.append(IDField("x-session-id", id)) }
        return sendPipelinedIMAP(.id(fields))
    }

    mutating func sendCredentials() -> [SessionAction] {
        guard case .login(var login) = phase else { return [] }
        let credentials = login.credentials
        if capabilities.contains(Capability.authPlain) {
            let payload = credentials.encodedBase64()
            let command: IMAPCommand
            if capabilities.contains(Capability.saslIR) {
                command = .authenticatePlain(initialResponse: payload)
            } else {
                login.pendingPayload = payload
                command = .authenticatePlain(initialResponse: nil)
            }
            phase = .login(login)
            return sendLoginFlight([(.authenticate, command)] + afterCredentials)
        }
        if capabilities.contains(Capability.loginDisabled) {
            return loginFailed(.permanent("Backend refuses to log in.", log: "backend advertises LOGINDISABLED and no AUTH=PLAIN"))
        }
        guard credentials.authorizationIdentity.isEmpty || credentials.authorizationIdentity == credentials.authenticationIdentity else {
            return loginFailed(.permanent("Authorization identity not supported by the backend.", log: "backend has no AUTH=PLAIN, cannot pass an authorization identity"))
        }
        let command = IMAPCommand.login(user: Secret(credentials.authenticationIdentity), password: credentials.password)
        return sendLoginFlight([(.authenticate, command)] + afterCredentials)
    }

    /// SELECT and the snapshot FETCH go behind the credentials when nothing waits for a continuation
    /// (SASL-IR, or a LOGIN without synchronising literals): a failed login makes them fail harmlessly.
    var afterCredentials: [(Login.Step, IMAPCommand)] {
        guard case .login(let login) = phase else { return [] }
        var commands: [(Login.Step, IMAPCommand)] = [(.select, .select(mailbox: settings.mailbox)), (.snapshot, snapshotFetch(login))]
        if policy.retention.onDelete == .move && policy.retention.moveTo == nil {
            // `move_to: auto`: the mailbox list goes in the same flight; NAMESPACE only where the
            // capabilities known before login list it (else the follow-up flight asks, if still needed).
            commands.append(listForTrash)
            if capabilities.contains(Capability.namespace) { commands.append((.namespace, .namespace)) }
        }
        return commands
    }

    /// `LIST "" "*" RETURN (SPECIAL-USE)` where the capabilities allow it, else a plain LIST, whose
    /// attributes carry `\Trash` on most servers that know special use (Dovecot, Cyrus).
    var listForTrash: (Login.Step, IMAPCommand) {
        capabilities.contains(Capability.specialUse) && capabilities.contains(Capability.listExtended)
            ? (.specialUseList, .listAll(specialUse: true)) : (.trashList, .listAll(specialUse: false))
    }

    /// What `move_to: auto` still has to ask, once the plan is known and nothing is in flight: only for a
    /// plan that moves, and only what the post-login capabilities allow and no answer gave yet.
    func trashDiscovery(_ login: Login) -> [(Login.Step, IMAPCommand)] {
        guard policy.retention.moveTo == nil, login.plan?.onDelete == .move, login.trash.specialUse == nil else { return [] }
        var commands: [(Login.Step, IMAPCommand)] = []
        let list = listForTrash
        if !login.trash.listAnswered && !login.trash.specialUseListAnswered || list.0 == .specialUseList && !login.trash.specialUseListAnswered {
            commands.append(list)
        }
        if capabilities.contains(Capability.namespace) && !login.trash.namespaceAnswered {
            commands.append((.namespace, .namespace))
        }
        return commands
    }

    mutating func loginTagged(_ condition: IMAPCondition) -> [SessionAction] {
        guard case .login(let login) = phase else { return [] }
        switch login.step {
        case .penalty, .userCheck, .userClaim, .routing, .connecting, .greeting, .tlsHandshake, .trashList, .specialUseList, .namespace:
            return loginFailed(.temporary("unexpected tagged response during login"))
        case .startTLS:
            guard condition.status == .ok else {
                return loginFailed(.permanent("Backend refused TLS.", log: "backend refused STARTTLS: \(condition.text)"))
            }
            // Plaintext the server sent after its OK must not be trusted (the STARTTLS injection class).
            imap = IMAPResponseParser()
            var login = login
            login.step = .tlsHandshake
            phase = .login(login)
            return [.startBackendTLS, .scheduleTimer(.backend, after: settings.backendTimeout)]
        case .capability:
            guard condition.status == .ok else { return loginFailed(.temporary("CAPABILITY failed: \(condition.text)")) }
            return authenticate()
        case .authenticate:
            guard condition.status == .ok else { return loginFailed(Self.authenticationFailure(condition)) }
            var login = login
            login.pendingPayload = nil
            phase = .login(login)
            if case .capability? = condition.code {
                return decideRetentionPlan()
            }
            return askPostLoginCapabilities()
        case .postLoginCapability:
            return decideRetentionPlan()
        case .select:
            guard condition.status == .ok else { return loginFailed(Self.selectFailure(condition, mailbox: settings.mailbox)) }
            guard login.uidValidity != nil else { return loginFailed(.temporary("SELECT gave no UIDVALIDITY")) }
            if let refusal = retentionKeywordRefusal(login) { return loginFailed(refusal) }
            var login = login
            login.selected = true
            phase = .login(login)
            snapshot = snapshotBuilder(login)
            return continueLogin()
        case .snapshot:
            if condition.status != .ok {
                // `1:*` on an empty mailbox is fine by RFC 3501, yet some servers refuse it: when SELECT
                // found no messages, a refused FETCH is an empty snapshot.
                guard login.exists == 0 else { return loginFailed(.temporary("snapshot FETCH failed: \(condition.text)")) }
                snapshot = snapshotBuilder(login)
            }
            var login = login
            login.snapshotTaken = true
            phase = .login(login)
            return continueLogin()
        }
    }

    /// `on_delete: flag` hides DELE'd mail with a keyword, `visible: not_popped` retrieved mail with
    /// another. A server whose PERMANENTFLAGS allow neither new keywords (`\*`) nor the keyword would
    /// accept the STORE and drop the keyword: QUIT would say +OK and the mail would be listed again.
    /// The login fails instead (RFC 3501 §7.1; servers may refuse client keywords, e.g. pymap).
    func retentionKeywordRefusal(_ login: Login) -> LoginFailure? {
        guard let flags = login.permanentFlags, !flags.contains("\\*") else { return nil }
        func stored(_ keyword: String) -> Bool { flags.contains { ASCII.equalsIgnoringCase($0.utf8, keyword.utf8) } }
        let retention = policy.retention
        if (login.plan?.onDelete ?? retention.onDelete) == .flag && !stored(retention.flagKeyword) {
            return .permanent("Backend cannot keep the deletion mark.",
                              log: "retention.on_delete flag needs the keyword \(retention.flagKeyword), which the backend does not store (PERMANENTFLAGS (\(flags.joined(separator: " "))))")
        }
        if policy.visible == .notPopped && !stored(policy.retrievedKeyword) {
            return .permanent("Backend cannot keep the retrieval mark.",
                              log: "visible: not_popped needs the keyword \(policy.retrievedKeyword), which the backend does not store (PERMANENTFLAGS (\(flags.joined(separator: " "))))")
        }
        return nil
    }

    /// The login's OK listed no capabilities: CAPABILITY asks. Behind SELECT and FETCH already in flight
    /// its answer comes last, and the maildrop waits for it (`continueLogin`).
    mutating func askPostLoginCapabilities() -> [SessionAction] {
        guard case .login(let login) = phase else { return [] }
        guard !login.inFlight.isEmpty else { return continueLogin() }
        return queueLoginCommand(.capability, step: .postLoginCapability) + continueLogin()
    }

    /// Which retention policy this backend can carry out safely. A plain EXPUNGE is never used: it would
    /// also remove messages other clients flagged `\Deleted`.
    var effectiveOnDelete: RetentionPolicy.OnDelete? {
        let uidplus = capabilities.contains(Capability.uidPlus)
        let move = capabilities.contains(Capability.move)
        switch policy.retention.onDelete {
        case .expunge: return uidplus ? .expunge : (move ? .move : nil)
        case .move: return (move || uidplus) ? .move : nil
        case .flag, .keep: return policy.retention.onDelete
        }
    }

    /// Fixes what QUIT will do from the post-login capabilities, before the maildrop goes live. A
    /// backend that cannot carry out the policy safely fails the login, whatever is still in flight.
    mutating func decideRetentionPlan() -> [SessionAction] {
        guard case .login(var login) = phase else { return [] }
        let retention = policy.retention
        guard let onDelete = effectiveOnDelete else {
            return loginFailed(.permanent("Backend cannot delete safely (no UIDPLUS or MOVE).", log: "retention.on_delete \(retention.onDelete.rawValue) needs UIDPLUS or MOVE, which the backend lacks"))
        }
        if onDelete == .move, let folder = retention.moveTo, let refusal = Self.moveIntoMaildropRefusal(folder, settings.mailbox) {
            return loginFailed(refusal)
        }
        login.plan = RetentionPlan(onDelete: onDelete, hasMove: capabilities.contains(Capability.move), moveTo: retention.moveTo ?? "Trash")
        phase = .login(login)
        var actions: [SessionAction] = []
        if onDelete != retention.onDelete {
            actions.append(.log(LogRecord(.warning, "backend lacks UIDPLUS: retention on_delete expunge falls back to move to \(retention.moveTo ?? "the trash folder (move_to auto)")")))
        }
        return actions + continueLogin()
    }

    /// A move into the maildrop itself would "delete" nothing while QUIT said +OK.
    static func moveIntoMaildropRefusal(_ folder: String, _ mailbox: String) -> LoginFailure? {
        guard sameMailbox(folder, mailbox) else { return nil }
        return .permanent("Backend cannot delete safely.", log: "retention would move deleted messages to \(folder), which is the maildrop itself")
    }

    /// RFC 3501 §5.1: INBOX is case-insensitive; other names are compared exactly. Shared with the
    /// configuration check, which refuses the same mistake before the daemon starts.
    public static func sameMailbox(_ a: String, _ b: String) -> Bool {
        if a.uppercased() == "INBOX" && b.uppercased() == "INBOX" { return true }
        return a == b
    }

    mutating func finishLogin() -> [SessionAction] {
        guard case .login(let login) = phase, let uidValidity = login.uidValidity, var plan = login.plan else { return [] }
        var found: [SessionAction] = []
        if plan.onDelete == .move && policy.retention.moveTo == nil {
            let (folder, source) = login.trash.folder
            if let refusal = Self.moveIntoMaildropRefusal(folder, settings.mailbox) { return loginFailed(refusal) }
            plan.moveTo = folder
            found.append(.log(LogRecord(.debug, "deleted messages go to \(ASCII.sanitized(Array(folder.utf8)))", fields: [LogKey.trash: source.rawValue])))
        }
        if settings.limits.userLimitsActive && claimedUser == nil {
            // Asked once more now that the backend said yes: a session of the same user may have logged
            // in meanwhile. The answer comes back here with `claimedUser` set.
            var login = login
            login.step = .userClaim
            phase = .login(login)
            return [.lookUpUserLimits(user: login.limitsUser, claim: true)]
        }
        let headerCandidates = settings.uidlSource == .header ? snapshot.headerUIDLs : nil
        let (drop, ignoredHeaderUIDLs) = Maildrop.snapshot(snapshot.fetched, uidValidity: uidValidity, hidden: snapshot.hidden,
                                                           headerCandidates: headerCandidates, format: settings.uidlFormat)
        let unusableHeaderUIDLs = snapshot.unusableHeaderUIDLs
        snapshot = SnapshotBuilder()
        guard drop.entries.count <= settings.limits.maxMessages else {
            return loginFailed(.permanent("Mailbox too large for POP3.", log: "\(drop.entries.count) messages exceed limits.max_messages"))
        }
        maildrop = drop
        retentionPlan = plan
        phase = .transaction
        summary.listed = drop.entries.count
        authFailures = 0
        var fields = [LogKey.messages: String(drop.entries.count)]
        if let used = drop.headerUIDLs {
            // How many UIDLs came from X-UIDL headers, and how many headers were not used (unusable, or
            // repeating another message's UIDL).
            fields[LogKey.headerUIDLs] = String(used.count)
            fields[LogKey.headerUIDLsIgnored] = String(unusableHeaderUIDLs + ignoredHeaderUIDLs)
        }
        return found + [
            .cancelTimer(.login),
            .recordAuthSuccess,
            .lookUpUIDLHistory(user: summary.user ?? ""),
            .count(.loginSucceeded),
            .log(LogRecord(.info, "logged in", fields: fields)),
            .sendToClient(POP3Response.ok("Logged in.")),
        ] + processClientInput()
    }

    /// Ends the login attempt: the backend connection is dropped, the client may try again.
    mutating func loginFailed(_ failure: LoginFailure) -> [SessionAction] {
        var actions: [SessionAction] = failure.refusal ? [] : [.count(.loginFailed(failure.reason))]
        actions.append(.log(LogRecord(failure.delayed || failure.refusal ? .notice : .warning, "login failed: \(ASCII.sanitized(Array(failure.log.utf8)))")))
        actions += resetBackendLink()
        actions += releaseUser()
        if failure.delayed { actions.append(.recordAuthFailure) }
        let response = POP3Response.err(failure.text, code: failure.code)
        guard failure.delayed else {
            phase = .authorization(user: nil)
            return actions + [.sendToClient(response)] + processClientInput()
        }
        authFailures += 1
        phase = .loginFailed(response: response, close: failure.close || authFailures >= settings.limits.maxAuthFailures)
        return actions + [.scheduleTimer(.authFailureDelay, after: failure.delay ?? settings.authFailureDelay)]
    }

    static func authenticationFailure(_ condition: IMAPCondition) -> LoginFailure {
        let log = "backend said \(condition.status) \(condition.text)"
        switch condition.code {
        case .unavailable?:
            return .temporary(log)
        case .inUse?:
            return LoginFailure(code: .inUse, text: "Mailbox is locked by another session.", delayed: false, log: log)
        case .expired?, .privacyRequired?, .contactAdmin?:
            return LoginFailure(code: .sysPerm, text: "Login refused by the mail server; contact your provider.", delayed: false, log: log)
        case .authenticationFailed?, .authorizationFailed?, nil:
            if condition.status == .bad {
                return .permanent("Login command rejected by the backend.", log: log)
            }
            return LoginFailure(code: .auth, text: "Authentication failed.", delayed: true, log: log)
        default:
            return LoginFailure(code: .auth, text: "Authentication failed.", delayed: true, log: log)
        }
    }

    static func selectFailure(_ condition: IMAPCondition, mailbox: String) -> LoginFailure {
        let log = "SELECT \(mailbox): \(condition.status) \(condition.text)"
        switch condition.code {
        case .inUse?:
            return LoginFailure(code: .inUse, text: "Mailbox is locked by another session.", delayed: false, log: log)
        case .nonExistent?, .noPerm?:
            return .permanent("Mailbox is not available.", log: log)
        default:
            return .temporary(log)
        }
    }
}
