#if canImport(Glibc)
import Glibc
#endif
import FuzzSupport
import Gateway
import IMAP
import POP3

// The POP3 side of a whole session (Sources/Gateway, with the POP3 line framer and command parser
// underneath): `GatewaySession(settings:listener:)`, `start()`, then `handle(_:)` with events the
// input chooses. A scripted IMAP backend answers what the session asks, so inputs get past login
// into TRANSACTION (RETR, TOP, DELE, QUIT with retention).
//
// Input: [settings] then a list of operations. The settings byte picks what `GatewaySettings` differs
// from its defaults in (0: nothing): bits 0-1 retention.onDelete (flag, move, expunge, keep), bit 2
// onRetrieve none, bit 3 TOP in 16-byte chunks, bit 4 backend STARTTLS, bit 5 backend plaintext allowed.
// Each operation is one byte (low 4 bits: what, high 4 bits: a parameter p) and
// for some of them data:
//   0  client data: [n] [n bytes]                      → .clientDataReceived
//   1  raw backend data: [n] [n bytes]                 → .backendDataReceived
//   2  the scripted backend answers its pending command (or greets), in chunks of p bytes (0: whole);
//      variable parts (message sizes and flags, bodies, OK/NO) are read from the input
//   3  .backendConnected(encrypted: p != 15)
//   4  .timerFired(idle / backend / authFailureDelay by p % 3)
//   5  .clientClosed or .clientInputEnded (p odd)
//   6  .backendConnectFailed / .backendClosed / .backendTLSFailed / .backendTLSEstablished (p % 4)
//   7  .clientOutputThrottled(p odd)
//   8  .shutdownRequested, or .drainExpired (p odd)
//   9  .clientTLSEstablished
//   10… like 2 (the common case: let the backend carry on)
//
// Checks, whatever happens:
// - every .sendToClient payload is non-empty; a payload that starts a response starts with "+OK",
//   "-ERR" or "+ " (SASL), and a status line is at most 512 octets with CRLF and holds no bare CR/LF;
//   bytes inside a multi-line answer (CAPA, LIST, UIDL, RETR, TOP, bare AUTH) are a continuation,
//   which ends with "\r\n.\r\n". Which command a response answers is followed with the session's own
//   public LineFramer and POP3CommandParser.
// - nothing is sent to the client after .closeClient; .sessionEnded comes at most once and is the last
//   action ever (later events return nothing).
//
// FUZZ_TRACE=1 in the environment prints each event and the actions it produced (to read a crash).

let trace = getenv("FUZZ_TRACE") != nil

/// One unbuffered line on stderr, so a transcript goes right up to a crash.
func say(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

// Only the session's public face is used (init, start, handle, the event and action enums, the
// settings' public fields): its internals change independently of this harness.
func settings(_ byte: UInt8) -> GatewaySettings {
    var settings = GatewaySettings()
    if byte & 8 != 0 { settings.limits.topChunkSize = 16 }
    return settings
}

/// What the router answers: mostly a route (its backend TLS mode, retention and visibility from the
/// byte), sometimes a refusal, an outage or no route at all.
func routeDecision(_ byte: UInt8, _ second: UInt8) -> RouteDecision {
    switch second & 7 {
    case 5: return .refused(text: "Go away", wait: .seconds(1))
    case 6: return .unavailable(reason: "hook down")
    case 7: return .noRoute
    default: break
    }
    var policy = SessionPolicy()
    policy.retention.onDelete = [.flag, .move, .expunge, .keep][Int(byte & 3)]
    if byte & 4 != 0 { policy.retention.onRetrieve = .none }
    policy.visible = [.all, .unseen, .notPopped, .all][Int((second >> 3) & 3)]
    let tls: BackendTarget.TLSMode = byte & 16 != 0 ? .starttls : (byte & 32 != 0 ? .none : .implicit)
    let login: LoginRewrite = second & 32 != 0 ? .stripDomain : .asIs
    return .route(Route(backend: BackendTarget(host: "imap.test", port: 993, tls: tls), login: login, policy: policy))
}

let listener = ListenerContext(tlsActive: true, startTLSAvailable: false, plaintextAuthAllowed: true)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSession(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let first = input.byte()
    let second = input.byte()
    let session = GatewaySession(settings: settings(first), listener: listener)
    var harness = Harness(input: input, session: session, route: routeDecision(first, second))
    harness.run()
    return 0
}

struct Harness {
    var input: FuzzInput
    var session: GatewaySession
    var route: RouteDecision
    var client = ClientModel()
    var backend = ScriptedBackend()
    var ended = false
    var clientClosed = false
    var penaltyLookups = 0
    /// Answers to `.lookUpUserLimits` so far, and the admitted claims not released yet.
    var userLookups = 0
    var claimsHeld = 0

    init(input: FuzzInput, session: GatewaySession, route: RouteDecision) {
        self.input = input
        self.session = session
        self.route = route
    }

    mutating func run() {
        let greeting = session.start()
        if trace { show(nil, greeting) }
        for reply in perform(greeting) { handle(reply) }
        var steps = 0
        while !input.isAtEnd && steps < 2000 {
            steps += 1
            let op = input.byte()
            let p = op >> 4
            switch op & 15 {
            case 0:
                let bytes = input.take(Int(input.byte()))
                client.sent(bytes)
                handle(.clientDataReceived(bytes))
            case 1:
                handle(.backendDataReceived(input.take(Int(input.byte()))))
            case 3:
                handle(.backendConnected(encrypted: p != 15))
            case 4:
                handle(.timerFired([SessionTimer.idle, .backend, .authFailureDelay, .authPenalty, .login][Int(p) % 5]))
            case 5:
                handle(p % 2 == 0 ? .clientClosed : .clientInputEnded)
            case 6:
                switch p % 4 {
                case 0: handle(.backendConnectFailed(reason: "refused"))
                case 1: handle(.backendClosed(reason: p > 7 ? nil : "reset"))
                case 2: handle(.backendTLSFailed(reason: "bad certificate"))
                default: handle(.backendTLSEstablished)
                }
            case 7:
                handle(.clientOutputThrottled(p % 2 == 1))
            case 8:
                handle(p % 2 == 0 ? .shutdownRequested : .drainExpired)
            case 9:
                handle(.clientTLSEstablished)
            default:
                let answer = backend.answer(&input)
                guard !answer.isEmpty else { continue }
                for chunk in chunks(of: answer, lengths: p == 0 ? [] : [p]) {
                    handle(.backendDataReceived(chunk))
                }
            }
        }
        if !ended { handle(.clientClosed) }
        check(ended, "the session did not end on .clientClosed")
        check(claimsHeld == 0, "\(claimsHeld) per-user claims not released at the end")
    }

    /// Feeds `event`, then, one after another like the driver, the answers to actions that ask the
    /// daemon something (`.lookUpAuthPenalty`, `.requestClientWritable`).
    mutating func handle(_ event: SessionEvent) {
        var queue = [event]
        while !queue.isEmpty {
            let next = queue.removeFirst()
            let actions = session.handle(next)
            if trace { show(next, actions) }
            if ended {
                check(actions.isEmpty, "actions after .sessionEnded: \(actions) for \(next)")
                return
            }
            queue += perform(actions)
        }
    }

    func show(_ event: SessionEvent?, _ actions: [SessionAction]) {
        switch event {
        case .clientDataReceived(let bytes)?: say("C: \(printable(bytes))")
        case .backendDataReceived(let bytes)?: say("B: \(printable(bytes))")
        case let event?: say("event: \(event)")
        case nil: say("start")
        }
        for action in actions {
            switch action {
            case .sendToClient(let bytes): say("  S: \(printable(bytes))")
            case .sendToBackend(let bytes): say("  to B: \(printable(bytes))")
            case .scheduleTimer, .cancelTimer: break
            default: say("  \(action)")
            }
        }
    }

    /// Checks the actions; returns the events the driver would answer with.
    mutating func perform(_ actions: [SessionAction]) -> [SessionEvent] {
        var replies: [SessionEvent] = []
        for (index, action) in actions.enumerated() {
            check(!ended, "action after .sessionEnded: \(action)")
            switch action {
            case .sendToClient(let bytes):
                check(!bytes.isEmpty, "empty .sendToClient")
                check(!clientClosed, "sendToClient after closeClient", context: bytes)
                client.received(bytes)
            case .closeClient:
                clientClosed = true
            case .sendToBackend(let bytes):
                check(!bytes.isEmpty, "empty .sendToBackend")
                backend.received(bytes)
            case .connectBackend:
                backend.reset()
            case .resolveRoute:
                replies.append(.routeResolved(route))
            case .sessionEnded:
                check(index == actions.count - 1, ".sessionEnded is not the last action: \(actions)")
                ended = true
            case .lookUpAuthPenalty:
                // Alternate between no penalty and one, so both paths are taken.
                penaltyLookups += 1
                replies.append(.authPenaltyLookedUp(penaltyLookups % 2 == 0 ? .seconds(1) : .zero))
            case .requestClientWritable:
                replies.append(.clientWritable)
            case .lookUpUIDLHistory:
                // Alternate between no earlier session and one, so both comparisons are taken.
                penaltyLookups += 1
                replies.append(.uidlHistoryLookedUp(penaltyLookups % 2 == 0 ? UIDLSample(items: [.init(hash: 1, size: 10)]) : nil))
            case .lookUpUserLimits(_, let claim):
                // Mostly admitted, sometimes each refusal, so every path is taken.
                userLookups += 1
                let answer: UserAdmission = [.admitted, .admitted, .inUse, .admitted, .loginDelay][userLookups % 5]
                if claim && answer == .admitted { claimsHeld += 1 }
                replies.append(.userLimitsLookedUp(answer))
            case .releaseUser:
                claimsHeld -= 1
                check(claimsHeld >= 0, "releaseUser without an admitted claim")
            default:
                // startClientTLS, pause/resumeClientInput, startBackendTLS, closeBackend, timers, log,
                // count, and cases added later: nothing to check here.
                break
            }
        }
        return replies
    }
}

/// Follows the client's side of the conversation: which commands are waiting for an answer and where
/// in the output stream the next response starts.
struct ClientModel {
    /// Frames the client's bytes like the session does (RFC 2449's 255 octets with the session's slack:
    /// 512, `GatewaySession.maxLineLength` today).
    var framer = LineFramer(maxLineLength: 512)
    /// For each line not answered yet: does a +OK to it start a multi-line answer?
    var pending: [Bool] = []
    /// The next pending line is a SASL response, not a command.
    var saslResponseNext = false

    enum Position { case responseStart, statusLine(multiline: Bool, sasl: Bool), multiline }
    var position = Position.responseStart
    /// The status line being received (it may come in pieces).
    var statusLine: [UInt8] = []
    /// The last bytes of a multi-line answer, to spot "\r\n.\r\n" across payloads.
    var tail: [UInt8] = []

    mutating func sent(_ bytes: [UInt8]) {
        framer.append(bytes)
        while let event = framer.next() {
            switch event {
            case .tooLong:
                pending.append(false)
            case .line(let line):
                pending.append(Self.isMultiline(line))
            }
        }
    }

    static func isMultiline(_ line: [UInt8]) -> Bool {
        switch POP3CommandParser.parse(line[...]) {
        case .success(.capa), .success(.list(nil)), .success(.uidl(nil)), .success(.retr), .success(.top),
             .success(.auth(mechanism: nil, initialResponse: nil)):
            return true
        default:
            return false
        }
    }

    mutating func received(_ payload: [UInt8]) {
        var index = 0
        while index < payload.count {
            switch position {
            case .responseStart:
                let rest = Array(payload[index...])
                let starts = rest.hasPrefix(Array("+OK".utf8)) || rest.hasPrefix(Array("-ERR".utf8)) || rest.hasPrefix(Array("+ ".utf8))
                check(starts, "a response does not start with +OK, -ERR or \"+ \"", context: rest)
                // Unsolicited answers (idle timeout, shutdown) answer no line; the session ends after them.
                let multiline = pending.isEmpty ? false : pending.removeFirst()
                let sasl = rest.hasPrefix(Array("+ ".utf8))
                position = .statusLine(multiline: multiline && !saslResponseNext && rest.hasPrefix(Array("+OK".utf8)), sasl: sasl)
                saslResponseNext = false
                statusLine = []
            case .statusLine(let multiline, let sasl):
                let byte = payload[index]
                index += 1
                statusLine.append(byte)
                check(statusLine.count <= POP3Response.maximumStatusLineLength, "status line over 512 octets", context: statusLine)
                if byte == 10 {
                    check(statusLine.count >= 2 && statusLine[statusLine.count - 2] == 13, "status line ends in a bare LF", context: statusLine)
                    check(!statusLine.dropLast(2).contains(13), "CR inside a status line", context: statusLine)
                    if sasl {
                        // The next line the client sends is its SASL response; its answer is one line.
                        if pending.isEmpty { saslResponseNext = true } else { pending[0] = false }
                    }
                    position = multiline ? .multiline : .responseStart
                    tail = [13, 10]
                }
            case .multiline:
                let byte = payload[index]
                index += 1
                tail.append(byte)
                if tail.count > 5 { tail.removeFirst() }
                if tail == Array("\r\n.\r\n".utf8) { position = .responseStart }
            }
        }
    }
}

/// An IMAP server that answers what the gateway asks, shaped like Dovecot, with the variable parts
/// (capabilities, mailbox contents, bodies, failures) read from the fuzzer's input.
struct ScriptedBackend {
    var greeted = false
    /// What the gateway sent and nothing answered yet.
    var received: [UInt8] = []
    /// The command whose further lines (literal data, a SASL response) are still coming.
    var command: [String]?
    /// Message bodies by UID, made up from the input at their first fetch (TOP fetches in pieces).
    var bodies: [String: [UInt8]] = [:]

    mutating func reset() {
        greeted = false
        received = []
        command = nil
    }

    mutating func received(_ bytes: [UInt8]) { received += bytes }

    mutating func answer(_ input: inout FuzzInput) -> [UInt8] {
        guard greeted else {
            greeted = true
            let capabilities = ["IMAP4rev1 SASL-IR AUTH=PLAIN LITERAL+ UIDPLUS MOVE", "IMAP4rev1 AUTH=PLAIN", "IMAP4rev1",
                                "IMAP4rev1 LOGINDISABLED"][Int(input.byte() % 4)]
            return Array("* OK [CAPABILITY \(capabilities)] Dovecot ready.\r\n".utf8)
        }
        // The oldest complete line.
        guard let lf = received.firstIndex(of: 10) else { return [] }
        var line = Array(received[..<lf])
        received.removeFirst(lf + 1)
        if line.last == 13 { line.removeLast() }
        let text = String(decoding: line, as: UTF8.self)
        let continuing = command != nil
        if !continuing {
            command = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        }
        // A synchronising literal follows: ask for it.
        if line.last == UInt8(ascii: "}") && !text.hasSuffix("+}") { return Array("+ go ahead\r\n".utf8) }
        let words = command ?? []
        // AUTHENTICATE PLAIN without SASL-IR: ask for the payload.
        if !continuing && words.count == 3 && words[1].uppercased() == "AUTHENTICATE" { return Array("+ \r\n".utf8) }
        command = nil
        guard words.count >= 2 else { return Array("* BAD unknown command\r\n".utf8) }
        let tag = words[0]
        let verb = words[1].uppercased()
        let fetch = words.count > 3 && verb == "UID" && words[2].uppercased() == "FETCH"
        let choice = input.byte()
        if choice == 255 { return Array("\(tag) NO [UNAVAILABLE] try later\r\n".utf8) }
        if choice == 254 { return Array("\(tag) BAD what?\r\n".utf8) }
        if choice == 253 { return Array("* BYE going away\r\n".utf8) }
        switch verb {
        case "STARTTLS":
            return Array("\(tag) OK Begin TLS negotiation now.\r\n".utf8)
        case "CAPABILITY":
            return Array("* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN UIDPLUS MOVE\r\n\(tag) OK done\r\n".utf8)
        case "AUTHENTICATE", "LOGIN":
            if choice % 8 == 7 { return Array("\(tag) NO [AUTHENTICATIONFAILED] Authentication failed.\r\n".utf8) }
            if choice % 8 == 6 { return Array("\(tag) OK Logged in\r\n".utf8) }
            return Array("\(tag) OK [CAPABILITY IMAP4rev1 UIDPLUS MOVE LITERAL+] Logged in\r\n".utf8)
        case "SELECT":
            let count = Int(input.byte() % 6)
            return Array("* FLAGS (\\Seen \\Deleted $POP3Deleted)\r\n* \(count) EXISTS\r\n* OK [UIDVALIDITY \(1_732_780_000 + Int(choice))] UIDs valid\r\n\(tag) OK [READ-WRITE] Select completed.\r\n".utf8)
        case "UID" where fetch && text.contains("RFC822.SIZE"):
            var answer = ""
            let count = Int(choice % 6)
            for number in 0..<count {
                let uid = number * 3 + 1 + Int(input.byte() % 3)
                let sizeByte = input.byte()
                // 255: a size near UInt64's top, as a broken or hostile backend might send.
                let size: UInt64 = sizeByte == 255 ? 9_999_999_999_999_999_999 : UInt64(sizeByte) * 37
                let flags = ["", "\\Seen", "\\Deleted", "$POP3Deleted \\Seen"][Int(input.byte() % 4)]
                answer += "* \(number + 1) FETCH (UID \(uid) RFC822.SIZE \(size) FLAGS (\(flags)))\r\n"
            }
            return Array("\(answer)\(tag) OK Fetch completed.\r\n".utf8)
        case "UID" where fetch:
            if choice % 16 == 15 { return Array("\(tag) NO [EXPUNGEISSUED] gone\r\n".utf8) }
            if choice % 16 == 14 { return Array("\(tag) OK no such message\r\n".utf8) }
            let uid = words[3]
            let whole = bodies[uid] ?? input.take(Int(input.byte()) * (choice % 16 == 13 ? 64 : 1))
            bodies[uid] = whole
            // BODY.PEEK[]<offset.length>: that part, announced as BODY[]<offset>.
            var body = whole
            var origin = ""
            if let open = text.firstIndex(of: "<"), let dot = text[open...].firstIndex(of: "."),
               let close = text[dot...].firstIndex(of: ">"),
               let offset = Int(text[text.index(after: open)..<dot]), let length = Int(text[text.index(after: dot)..<close]),
               offset >= 0, length >= 0 {
                body = Array(whole.dropFirst(offset).prefix(length))
                origin = "<\(offset)>"
            }
            return Array("* 1 FETCH (UID \(uid) BODY[]\(origin) {\(body.count)}\r\n".utf8) + body
                + Array(")\r\n\(tag) OK Fetch completed.\r\n".utf8)
        case "UID", "CREATE":
            if choice % 16 == 15 { return Array("\(tag) NO [TRYCREATE] no such folder\r\n".utf8) }
            if choice % 16 == 14 { return Array("\(tag) NO [ALREADYEXISTS] exists\r\n".utf8) }
            return Array("\(tag) OK done\r\n".utf8)
        case "LOGOUT":
            return Array("* BYE Logging out\r\n\(tag) OK Logout completed.\r\n".utf8)
        default:
            return Array("\(tag) OK done\r\n".utf8)
        }
    }
}
