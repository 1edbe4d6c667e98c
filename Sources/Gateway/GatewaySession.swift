import IMAP
import POP3
import Wire

/// One POP3 client session translated onto one IMAP backend session: a pure state machine.
///
/// The driver feeds `SessionEvent`s and performs the returned `SessionAction`s in order. Nothing here
/// touches a socket, a clock or a logger. The sub-flows live in extensions:
/// `+Authorization` (USER/PASS/AUTH/STLS/CAPA), `+Login` (the IMAP login and snapshot),
/// `+Transaction` (STAT/LIST/UIDL/DELE/RSET/RETR/TOP), `+Update` (QUIT and the retention policy).
///
/// Commands are handled one at a time: while one waits for the backend, later pipelined commands stay
/// in the line framer, so answers always leave in order (RFC 2449 PIPELINING).
public struct GatewaySession: Sendable {
    public let settings: GatewaySettings
    let listener: ListenerContext
    let client: ClientContext

    var tlsActive: Bool
    var framer: LineFramer
    var phase: Phase = .notStarted {
        didSet {
            if case .login(let login) = phase, login.step == .snapshot {
                snapshot.collecting = true
            } else {
                snapshot.collecting = false
            }
        }
    }

    // Backend side.
    var backend: BackendLink = .none
    var imap = IMAPResponseParser()
    var tagCounter = 0
    /// The command whose tagged answer comes next; during login more may be in flight behind it
    /// (`Login.inFlight`).
    var currentTag: IMAPTag?
    /// Segments of a command with synchronising literals, sent one per continuation request.
    var pendingSegments: [[UInt8]] = []
    /// Commands sent ahead of `currentTag` whose tagged answers only need consuming (the `ID`).
    var pipelinedTags: [IMAPTag] = []
    var capabilities: Set<String> = []
    /// Built here rather than inside `Phase.login`: appending to an array held in an enum payload
    /// copies it on every append (quadratic in the mailbox size).
    var snapshot = SnapshotBuilder()
    var maildrop: Maildrop?
    /// What QUIT will do, decided once at login from the capabilities the backend had then (set when
    /// the maildrop goes live).
    var retentionPlan: RetentionPlan?
    /// Where the current login went (set when the router answered): its backend and policy.
    var route: Route?
    var backendLost = false
    /// The user this session is counted under in the daemon's per-user table (an admitted claim), until
    /// `.releaseUser`.
    var claimedUser: String?

    // Bookkeeping.
    var summary = SessionSummary()
    /// The UIDL sample of the user's previous session (`.uidlHistoryLookedUp`); compared at the end.
    var previousUIDLs: UIDLSample?
    var uidlHistoryLookedUp = false
    var badLines = 0
    var errors = 0
    var authFailures = 0
    var throttled = false
    var shuttingDown = false
    /// The client half-closed: once its last complete command is answered, the session ends.
    var clientInputEnded = false
    /// The driver was told to stop reading the client (`maxBufferedInput`, or its output is throttled).
    var clientInputPaused = false
    /// The driver was told to stop reading the backend (the client's output is throttled).
    var backendInputPaused = false
    /// Generated output reached `limits.outputChunkSize`; the rest waits for `.clientWritable`.
    var awaitingWritable = false

    /// POP3 line limit: RFC 2449 says 255 octets per command; AUTH responses get more room.
    public static let maxLineLength = 512

    public init(settings: GatewaySettings, listener: ListenerContext, client: ClientContext = ClientContext()) {
        self.settings = settings
        self.listener = listener
        self.client = client
        self.tlsActive = listener.tlsActive
        self.framer = LineFramer(maxLineLength: Self.maxLineLength)
    }

    enum Phase: Sendable {
        case notStarted
        case authorization(user: String?)
        /// AUTH PLAIN without initial response: the next line is the client's SASL response.
        case saslResponse
        case clientTLSHandshake
        case login(Login)
        /// A failed login is answered after `authFailureDelay`.
        case loginFailed(response: [UInt8], close: Bool)
        case transaction
        /// A LIST or UIDL answer generated a chunk at a time as the client takes it.
        case listing(Listing)
        case retrieve(Retrieve)
        case top(Top)
        case update(Update)
        case closed
    }

    enum BackendLink: Sendable, Equatable {
        case none
        case connecting
        case connected
    }

    // MARK: Events

    /// The connection was accepted: the login deadline starts now, before any TLS handshake.
    public mutating func accepted() -> [SessionAction] {
        [.scheduleTimer(.login, after: settings.loginTimeout)]
    }

    /// The greeting; for an implicit-TLS listener the driver calls this after the handshake.
    public mutating func start() -> [SessionAction] {
        guard case .notStarted = phase else { return [] }
        phase = .authorization(user: nil)
        return [
            .sendToClient(POP3Response.ok("PopGate POP3 gateway ready.")),
            .scheduleTimer(.idle, after: settings.idleTimeout),
        ]
    }

    public mutating func handle(_ event: SessionEvent) -> [SessionAction] {
        if case .closed = phase { return [] }
        switch event {
        case .clientDataReceived(let bytes):
            framer.append(bytes)
            return processClientInput()
        case .clientTLSEstablished:
            return clientTLSEstablished()
        case .clientClosed:
            return endSession(.clientGone, notifyClient: nil)
        case .clientInputEnded:
            clientInputEnded = true
            return processClientInput()
        case .backendConnected(let encrypted):
            return backendConnected(encrypted: encrypted)
        case .backendConnectFailed(let reason):
            return backendFailed(.connect, reason: "connect failed: \(reason)")
        case .backendDataReceived(let bytes):
            return backendDataReceived(bytes)
        case .backendTLSEstablished:
            return backendTLSEstablished()
        case .backendTLSFailed(let reason):
            return backendFailed(.tls, reason: "TLS failed: \(reason)")
        case .backendClosed(let reason):
            return backendFailed(.closed, reason: reason.map { "connection closed: \($0)" } ?? "connection closed")
        case .timerFired(let timer):
            return timerFired(timer)
        case .clientOutputThrottled(let on):
            throttled = on
            var actions = updateInputPauses()
            guard !on else { return actions }
            // The client took a watermark's worth of output: it is alive, whatever it sends.
            actions.append(.scheduleTimer(.idle, after: settings.idleTimeout))
            return actions + resumeGeneratedOutput()
        case .clientWritable:
            return resumeGeneratedOutput()
        case .uidlHistoryLookedUp(let sample):
            previousUIDLs = sample
            uidlHistoryLookedUp = true
            return []
        case .authPenaltyLookedUp(let delay):
            return authPenaltyLookedUp(delay)
        case .routeResolved(let decision):
            return routeResolved(decision)
        case .userLimitsLookedUp(let admission):
            return userLimitsLookedUp(admission)
        case .shutdownRequested:
            shuttingDown = true
            return []
        case .drainExpired:
            shuttingDown = true
            return endSession(.shutdown, notifyClient: isWaitingForCommand ? Self.shuttingDownResponse : nil)
        }
    }

    /// What this session does with the mailbox: its route's policy (the default until one is resolved,
    /// which only matters to code that never runs before login).
    var policy: SessionPolicy { route?.policy ?? SessionPolicy() }

    /// True when the next client line may be processed.
    var isWaitingForCommand: Bool {
        switch phase {
        case .authorization, .saslResponse, .transaction: true
        case .notStarted, .clientTLSHandshake, .login, .loginFailed, .listing, .retrieve, .top, .update, .closed: false
        }
    }

    var isLoggedIn: Bool {
        switch phase {
        case .transaction, .listing, .retrieve, .top, .update: true
        case .notStarted, .authorization, .saslResponse, .clientTLSHandshake, .login, .loginFailed, .closed: false
        }
    }

    // MARK: Client input

    mutating func processClientInput() -> [SessionAction] {
        var actions: [SessionAction] = []
        // Answers to a flood of pipelined commands are generated a chunk at a time, so a client that
        // never reads costs at most the driver's high watermark plus one chunk.
        var generated = 0
        while isWaitingForCommand && !awaitingWritable {
            if generated >= settings.limits.outputChunkSize {
                awaitingWritable = true
                actions.append(.requestClientWritable)
                break
            }
            guard let event = framer.next() else { break }
            let before = actions.count
            actions.append(.scheduleTimer(.idle, after: settings.idleTimeout))
            switch event {
            case .tooLong:
                badLines += 1
                if badLines >= settings.limits.maxBadLines {
                    actions += endSession(.tooManyErrors, notifyClient: POP3Response.err("Line too long; too many errors, closing connection."))
                } else {
                    actions.append(.sendToClient(POP3Response.err("Line too long.")))
                }
            case .line(let line):
                actions += handleLine(line)
            }
            for case .sendToClient(let bytes) in actions[before...] { generated += bytes.count }
        }
        if clientInputEnded && isWaitingForCommand && !awaitingWritable {
            // Everything the client sent has been answered (a QUIT among it has ended the session already).
            actions += endSession(.clientGone, notifyClient: nil)
        }
        if case .closed = phase { return actions }
        if isWaitingForCommand && !awaitingWritable && framer.bufferedByteCount == 0 {
            actions.append(.scheduleTimer(.releaseMemory, after: Self.idleMemoryDelay))
        }
        return actions + updateInputPauses()
    }

    /// Still waiting for the next command with nothing buffered `idleMemoryDelay` after the last answer:
    /// an idle session keeps only its state, not the buffers a snapshot, a message or a burst of
    /// commands grew (thousands of idle sessions each holding a read's worth would cost more than the
    /// sessions themselves). The driver does the same for the connections' buffers on
    /// `.releaseIdleMemory`; both skip buffers too small to matter. Not at once after every answer: a
    /// client fetching one message after another would then allocate (and fault in) every buffer anew
    /// for each message.
    mutating func releaseIdleMemory() -> [SessionAction] {
        guard isWaitingForCommand, !awaitingWritable, framer.bufferedByteCount == 0 else { return [] }
        if imap.bufferCapacity > Self.idleBufferCapacity { imap.releaseIdleMemory() }
        if framer.bufferCapacity > Self.idleBufferCapacity { framer.releaseIdleMemory() }
        return [.releaseIdleMemory]
    }

    static let idleMemoryDelay = Duration.seconds(2)

    /// Below this a buffer is not worth giving back (it would be allocated again for the next command).
    static let idleBufferCapacity = 4096

    /// Reading stops where memory would otherwise grow: the client while its pipelined input waits
    /// (`maxBufferedInput`) or its output is throttled; the backend while the client's output is.
    mutating func updateInputPauses() -> [SessionAction] {
        if case .closed = phase { return [] }
        var actions: [SessionAction] = []
        let pauseClient = throttled || framer.bufferedByteCount > settings.limits.maxBufferedInput
        if pauseClient != clientInputPaused {
            clientInputPaused = pauseClient
            actions.append(pauseClient ? .pauseClientInput : .resumeClientInput)
        }
        let pauseBackend = throttled && backend == .connected
        if pauseBackend != backendInputPaused {
            backendInputPaused = pauseBackend
            actions.append(pauseBackend ? .pauseBackendInput : .resumeBackendInput)
        }
        return actions
    }

    /// Goes on with generated output that waited for the client to take the previous chunk.
    mutating func resumeGeneratedOutput() -> [SessionAction] {
        guard awaitingWritable, !throttled else { return [] }
        awaitingWritable = false
        guard case .listing = phase else { return processClientInput() }
        let actions = continueListing()
        guard case .transaction = phase else { return actions }
        return actions + processClientInput()
    }

    static let shuttingDownResponse = POP3Response.err("Server shutting down.", code: .sysTemp)

    mutating func handleLine(_ line: [UInt8]) -> [SessionAction] {
        if shuttingDown {
            // Draining: only QUIT still does what it says; everything else ends the session unapplied.
            guard case .success(.quit) = POP3CommandParser.parse(line[...]) else {
                return endSession(.shutdown, notifyClient: Self.shuttingDownResponse)
            }
        }
        if case .saslResponse = phase {
            return saslResponseReceived(line)
        }
        switch POP3CommandParser.parse(line[...]) {
        case .failure(let error):
            return commandFailed(error.description)
        case .success(let command):
            if case .transaction = phase {
                return transactionCommand(command)
            }
            return authorizationCommand(command)
        }
    }

    /// `-ERR` for a bad or misplaced command; too many of them end the session.
    mutating func commandFailed(_ reason: String, code: ResponseCode? = nil) -> [SessionAction] {
        errors += 1
        if errors >= settings.limits.maxErrors {
            return endSession(.tooManyErrors, notifyClient: POP3Response.err("Too many errors, closing connection.", code: code))
        }
        return [.sendToClient(POP3Response.err(reason, code: code))]
    }

    // MARK: Timers

    mutating func timerFired(_ timer: SessionTimer) -> [SessionAction] {
        switch timer {
        case .login:
            guard !isLoggedIn else { return [] }
            // Mid-handshake there is no channel to answer on; otherwise the client hears why.
            let quiet: Bool
            switch phase {
            case .notStarted, .clientTLSHandshake: quiet = true
            default: quiet = false
            }
            return endSession(.loginTimeout, notifyClient: quiet ? nil : POP3Response.err("Login timed out.", code: .sysTemp))
        case .authPenalty:
            return authPenaltyElapsed()
        case .releaseMemory:
            return releaseIdleMemory()
        case .idle:
            if case .notStarted = phase {
                // An implicit-TLS client that never finished its handshake.
                return endSession(.timeout, notifyClient: nil)
            }
            if isWaitingForCommand || isClientTLSHandshake {
                // RFC 1939 §3: the autologout timer ends the session WITHOUT entering UPDATE.
                return endSession(.timeout, notifyClient: isClientTLSHandshake ? nil : POP3Response.err("Disconnected for inactivity."))
            }
            if throttled {
                // Mid-answer, and the client has not read enough to drain its buffer for a whole idle
                // period: a stalled client must not hold a backend connection forever.
                return endSession(.timeout, notifyClient: nil)
            }
            // A command is waiting for the backend (its own timer guards that): not idleness.
            return [.scheduleTimer(.idle, after: settings.idleTimeout)]
        case .backend:
            if throttled {
                // The backend is quiet because we stopped reading it while the client drains.
                return [.scheduleTimer(.backend, after: settings.backendTimeout)]
            }
            return backendFailed(.timeout, reason: "no answer within \(settings.backendTimeout)")
        case .authFailureDelay:
            guard case .loginFailed(let response, let close) = phase else { return [] }
            if close {
                return endSession(.tooManyErrors, notifyClient: response)
            }
            phase = .authorization(user: nil)
            return [.sendToClient(response)] + processClientInput()
        }
    }

    var isClientTLSHandshake: Bool {
        if case .clientTLSHandshake = phase { return true }
        return false
    }

    // MARK: Ending

    /// Ends the session without entering UPDATE: nothing is applied on the backend.
    mutating func endSession(_ ending: SessionSummary.Ending, notifyClient: [UInt8]?) -> [SessionAction] {
        if case .closed = phase { return [] }
        phase = .closed
        summary.ending = ending
        // DELE'd in this session, whether or not QUIT applied it (the retention field tells).
        summary.deleted = maildrop?.deletedUIDs.count ?? 0
        var actions: [SessionAction] = [
            .cancelTimer(.idle), .cancelTimer(.backend), .cancelTimer(.authFailureDelay), .cancelTimer(.authPenalty), .cancelTimer(.login),
        ]
        if let notifyClient { actions.append(.sendToClient(notifyClient)) }
        actions += observeUIDLs()
        actions.append(.closeClient)
        if backend != .none {
            if backend == .connected && !backendLost {
                actions.append(.sendToBackend(Self.logoutCommand))
            }
            actions.append(.closeBackend)
            backend = .none
        }
        actions += releaseUser()
        actions.append(.sessionEnded(summary))
        return actions
    }

    /// A session that logged in reports its UIDL set's hash and whether it changed since the user's
    /// previous session, and leaves the sample of what its client may keep (UIDLHistory.swift).
    mutating func observeUIDLs() -> [SessionAction] {
        guard let drop = maildrop, let user = summary.user, uidlHistoryLookedUp else { return [] }
        // Messages QUIT removed (flagged, moved, expunged) are no longer listed next time.
        let removedAtQuit = summary.ending == .quit && [RetentionOutcome.expunged, .moved, .flagged].contains(summary.retention)
        let observation = drop.observeUIDLs(format: settings.uidlFormat, previous: previousUIDLs) { entry in
            !(removedAtQuit && entry.markedDeleted)
        }
        summary.uidlHash = observation.shortHash
        summary.uidlChange = observation.change
        var actions: [SessionAction] = [.rememberUIDLHistory(user: user, observation.sample)]
        if observation.change == .yes {
            actions.insert(.log(LogRecord(.warning, "UIDLs changed since this user's previous session: a client that keeps mail on the server may download it all again",
                                          fields: [LogKey.uidlHash: observation.shortHash])), at: 0)
        }
        return actions
    }

    /// Sent before closing a backend connection we are done with; its answer is never awaited.
    static let logoutCommand = IMAPCommandEncoder.encode(.logout, tag: IMAPTag("Z"), literalPlus: false)[0]

    /// Forgets the backend connection and everything learned on it (a failed or abandoned login), so
    /// the client's next attempt starts from a clean link.
    mutating func resetBackendLink() -> [SessionAction] {
        var actions: [SessionAction] = [.cancelTimer(.backend)]
        if backend == .connected && !backendLost { actions.append(.sendToBackend(Self.logoutCommand)) }
        if backend != .none { actions.append(.closeBackend) }
        backend = .none
        backendLost = false
        backendInputPaused = false
        currentTag = nil
        pendingSegments = []
        pipelinedTags = []
        imap = IMAPResponseParser()
        capabilities = []
        snapshot = SnapshotBuilder()
        return actions
    }

    // MARK: Backend plumbing

    /// Sends a command whose answer nobody waits for, ahead of the next `sendIMAP` (same flight).
    mutating func sendPipelinedIMAP(_ command: IMAPCommand) -> [SessionAction] {
        tagCounter += 1
        let tag = IMAPTag("P\(tagCounter)")
        pipelinedTags.append(tag)
        // Only commands without synchronising literals are pipelined (`ID` sends quoted strings only).
        return IMAPCommandEncoder.encode(command, tag: tag, literalPlus: true).map { .sendToBackend($0) }
    }

    /// Sends one IMAP command with a fresh tag and arms the backend timer.
    mutating func sendIMAP(_ command: IMAPCommand) -> [SessionAction] {
        tagCounter += 1
        let tag = IMAPTag("P\(tagCounter)")
        currentTag = tag
        var segments = IMAPCommandEncoder.encode(command, tag: tag, literalPlus: capabilities.contains(Capability.literalPlus))
        let first = segments.removeFirst()
        pendingSegments = segments
        return [.sendToBackend(first), .scheduleTimer(.backend, after: settings.backendTimeout)]
    }

    mutating func backendDataReceived(_ bytes: [UInt8]) -> [SessionAction] {
        imap.append(bytes)
        var actions: [SessionAction] = []
        if currentTag != nil {
            // Data is flowing: the round trip is alive.
            actions.append(.scheduleTimer(.backend, after: settings.backendTimeout))
        }
        while true {
            if case .closed = phase { break }
            let response: IMAPResponse?
            do {
                response = try imap.next()
            } catch {
                actions += backendFailed(.protocol, reason: "unparsable response (\(error))")
                break
            }
            guard let response else { break }
            actions += backendResponse(response)
        }
        return actions
    }

    /// Routes one backend response to the phase that waits for it.
    mutating func backendResponse(_ response: IMAPResponse) -> [SessionAction] {
        switch response {
        case .capability(let list):
            capabilities = Set(list)
            return []
        case .continuationRequest:
            if !pendingSegments.isEmpty {
                return [.sendToBackend(pendingSegments.removeFirst())]
            }
        case .tagged(let tag, let condition):
            if let index = pipelinedTags.firstIndex(of: tag) {
                // The answer to an `ID`: whatever it says, the login goes on.
                pipelinedTags.remove(at: index)
                return []
            }
            if let actions = discoveryAnswered(tag) { return actions }
            if case .capability(let list)? = condition.code { capabilities = Set(list) }
            guard tag == currentTag else {
                return backendFailed(.protocol, reason: "unexpected tag \(tag)")
            }
            currentTag = nil
            pendingSegments = []
            var actions: [SessionAction] = [.cancelTimer(.backend)]
            actions += taggedResponse(condition)
            return actions
        case .untagged(let condition):
            if case .capability(let list)? = condition.code { capabilities = Set(list) }
        default:
            break
        }
        switch phase {
        case .login:
            return loginResponse(response)
        case .retrieve:
            return retrieveResponse(response)
        case .top:
            return topResponse(response)
        case .update, .transaction, .listing, .loginFailed, .authorization, .saslResponse, .clientTLSHandshake, .notStarted, .closed:
            // Unsolicited EXISTS/EXPUNGE/FETCH FLAGS and friends: the snapshot is fixed, nothing to do.
            return []
        }
    }

    mutating func taggedResponse(_ condition: IMAPCondition) -> [SessionAction] {
        switch phase {
        case .login:
            return loginTagged(condition)
        case .retrieve:
            return retrieveTagged(condition)
        case .top:
            return topTagged(condition)
        case .update:
            return updateTagged(condition)
        case .transaction, .listing, .loginFailed, .authorization, .saslResponse, .clientTLSHandshake, .notStarted, .closed:
            return []
        }
    }

    /// The backend is gone or unusable. Nothing is applied; what the client hears depends on where we were.
    mutating func backendFailed(_ kind: BackendErrorKind, reason: String) -> [SessionAction] {
        let wasConnected = backend != .none
        backendLost = true
        var actions: [SessionAction] = [.count(.backendError(kind)), .log(LogRecord(.warning, "backend failure: \(ASCII.sanitized(Array(reason.utf8)))"))]
        switch phase {
        case .login:
            actions.append(.count(.loginFailed(.backend)))
            actions += resetBackendLink()
            phase = .authorization(user: nil)
            actions.append(.sendToClient(POP3Response.err("Backend server unavailable, try again later.", code: .sysTemp)))
            actions += processClientInput()
            return actions
        case .retrieve(let state) where state.started:
            // Mid multi-line response: an -ERR would be read as message text; only closing is honest.
            return actions + endSession(.backendError, notifyClient: nil)
        case .top(let state) where state.started:
            return actions + endSession(.backendError, notifyClient: nil)
        case .retrieve, .top:
            return actions + endSession(.backendError, notifyClient: POP3Response.err("Backend connection lost.", code: .sysTemp))
        case .update:
            summary.retention = .failed
            return actions + endSession(.backendError, notifyClient: POP3Response.err("Backend connection lost; some deleted messages were not removed.", code: .sysTemp))
        case .transaction, .listing:
            // Nobody is waiting: the next command gets the error.
            backend = .none
            return actions + [.closeBackend, .cancelTimer(.backend)]
        case .loginFailed, .authorization, .saslResponse, .clientTLSHandshake, .notStarted:
            if wasConnected { actions.append(.closeBackend) }
            backend = .none
            return actions
        case .closed:
            return []
        }
    }
}

extension GatewaySession {
    /// The user name the client gave (for log metadata); never the password.
    public var currentUser: String? { summary.user }
    /// The route the current login took, once resolved.
    public var routeName: String? { route?.name }
}
