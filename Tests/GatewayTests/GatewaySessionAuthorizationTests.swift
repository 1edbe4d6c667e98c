import Gateway
import Wire
import XCTest

final class GatewaySessionAuthorizationTests: XCTestCase {
    let starttlsListener = ListenerContext(tlsActive: false, startTLSAvailable: true, plaintextAuthAllowed: false)

    func testGreetingAndCapaBeforeTLSOfferOnlySTLS() {
        var t = SessionTranscript(listener: starttlsListener)
        XCTAssertEqual(t.takeClient(), "+OK PopGate POP3 gateway ready.\r\n")
        t.client("CAPA\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nSTLS\r\nIMPLEMENTATION PopGate\r\n.\r\n")
    }

    func testLoginBeforeTLSIsRefused() {
        var t = SessionTranscript(listener: starttlsListener)
        _ = t.takeClient()
        t.client("USER alice\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")
        let answer = t.takeClient()
        XCTAssertEqual(answer.components(separatedBy: "\r\n").filter { $0.hasPrefix("-ERR [AUTH] Plaintext authentication disallowed") }.count, 2, answer)
        XCTAssertFalse(t.connectsBackend)
    }

    func testSTLSDiscardsPipelinedPlaintext() {
        // C: STLS\r\nCAPA\r\n in one packet: the CAPA must never be executed (CVE-2011-0411 class).
        var t = SessionTranscript(listener: starttlsListener)
        _ = t.takeClient()
        t.client("STLS\r\nCAPA\r\nUSER x\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Begin TLS negotiation now.\r\n")
        XCTAssertTrue(t.contains(.startClientTLS))
        t.send(.clientTLSEstablished)
        XCTAssertEqual(t.takeClient(), "")
        t.client("CAPA\r\n")
        let capa = t.takeClient()
        XCTAssertTrue(capa.contains("USER\r\nSASL PLAIN\r\n"), capa)
        XCTAssertFalse(capa.contains("STLS"), capa)
    }

    func testCommandsInTheWrongStateAndGarbageKeepTheSessionUsable() {
        var t = SessionTranscript()
        _ = t.takeClient()
        t.client("STAT\r\nRETR 1\r\nFOO bar\r\nAPOP a b\r\n\u{0}\u{1}xyz\r\nNOOP\r\n")
        let lines = t.takeClient().components(separatedBy: "\r\n").filter { !$0.isEmpty }
        XCTAssertEqual(lines.count, 6, "\(lines)")
        XCTAssertTrue(lines[0..<5].allSatisfy { $0.hasPrefix("-ERR ") }, "\(lines)")
        XCTAssertEqual(lines[5], "+OK")
        XCTAssertNil(t.ended)
    }

    func testOverLongLinesGetErrThenTheConnectionCloses() {
        var t = SessionTranscript()
        _ = t.takeClient()
        let long = String(repeating: "A", count: 600) + "\r\n"
        t.client(long)
        XCTAssertEqual(t.takeClient(), "-ERR Line too long.\r\n")
        t.client("NOOP\r\n")
        XCTAssertEqual(t.takeClient(), "+OK\r\n")
        t.client(long + long)
        XCTAssertTrue(t.takeClient().hasSuffix("too many errors, closing connection.\r\n"))
        XCTAssertTrue(t.contains(.closeClient))
        XCTAssertEqual(t.ended?.ending, .tooManyErrors)
    }

    func testWrongPasswordIsAnsweredOnlyAfterTheDelay() {
        var t = SessionTranscript(settings: GatewaySettings(authFailureDelay: .seconds(2)))
        _ = t.takeClient()
        t.reachBackend("USER alice\r\nPASS wrong\r\nNOOP\r\n")
        _ = t.takeBackend()
        t.backend("P1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
        XCTAssertEqual(t.takeClient(), "", "nothing before the delay")
        XCTAssertTrue(t.contains(.scheduleTimer(.authFailureDelay, after: .seconds(2))))
        XCTAssertTrue(t.contains(.closeBackend))
        t.send(.timerFired(.authFailureDelay))
        // The pipelined NOOP is answered after the failure, in order.
        XCTAssertEqual(t.takeClient(), "-ERR [AUTH] Authentication failed.\r\n+OK\r\n")
    }

    func testAuthPlainContinuationWithAuthorizationIdentity() {
        var t = SessionTranscript()
        _ = t.takeClient()
        t.client("AUTH PLAIN\r\n")
        XCTAssertEqual(t.takeClient(), "+ \r\n")
        let message = Array("alice\0alice\0p w\"\\ö".utf8)
        t.client(String(decoding: Base64.encode(message), as: UTF8.self) + "\r\n")
        XCTAssertTrue(t.connectsBackend)
        t.send(.backendConnected(encrypted: true))
        t.backend(SessionTranscript.greeting)
        XCTAssertEqual(t.takeBackend(), "P1 AUTHENTICATE PLAIN \(String(decoding: Base64.encode(message), as: UTF8.self))\r\nP2 SELECT \"INBOX\"\r\nP3 UID FETCH 1:* (UID RFC822.SIZE FLAGS)\r\n")
    }

    func testAuthCancelled() {
        var t = SessionTranscript()
        _ = t.takeClient()
        t.client("AUTH PLAIN\r\n*\r\nNOOP\r\n")
        XCTAssertEqual(t.takeClient(), "+ \r\n-ERR Authentication cancelled.\r\n+OK\r\n")
    }

    func testBackendDownGivesSysTemp() {
        var t = SessionTranscript()
        _ = t.takeClient()
        t.client("USER alice\r\nPASS secret\r\n")
        _ = t.takeClient()
        t.send(.backendConnectFailed(reason: "connect: Connection refused"))
        XCTAssertEqual(t.takeClient(), "-ERR [SYS/TEMP] Backend server unavailable, try again later.\r\n")
        XCTAssertNil(t.ended, "the client may try again")
    }

    func testNoPasswordOverAnUnencryptedBackend() {
        var t = SessionTranscript()
        _ = t.takeClient()
        t.reachBackend(encrypted: false)
        XCTAssertFalse(t.takeBackend().contains("AUTHENTICATE"))
        XCTAssertTrue(t.takeClient().hasPrefix("-ERR [SYS/PERM]"))
    }

    func testBackendStartTLSBeforeLogin() {
        var t = SessionTranscript(backend: BackendTarget(host: "imap.test", port: 143, tls: .starttls))
        _ = t.takeClient()
        t.client("USER alice\r\nPASS secret\r\n")
        t.send(.backendConnected(encrypted: false))
        t.backend(SessionTranscript.greeting)
        XCTAssertEqual(t.takeBackend(), "P1 STARTTLS\r\n")
        // Bytes after the OK in the same packet are plaintext injection and must be dropped.
        t.backend("P1 OK Begin TLS negotiation now.\r\n* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n")
        XCTAssertTrue(t.contains(.startBackendTLS))
        t.send(.backendTLSEstablished)
        XCTAssertEqual(t.takeBackend(), "P2 CAPABILITY\r\n")
        t.backend("* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN\r\nP2 OK Pre-login capabilities listed, post-login capabilities have more.\r\n")
        XCTAssertTrue(t.takeBackend().hasPrefix("P3 AUTHENTICATE PLAIN "))
    }

    func testIdleTimeoutBeforeTheImplicitTLSHandshakeFinishedEndsTheSession() {
        var session = GatewaySession(settings: GatewaySettings(), listener: ListenerContext(tlsActive: true, startTLSAvailable: false, plaintextAuthAllowed: false))
        let actions = session.handle(.timerFired(.idle))
        XCTAssertTrue(actions.contains(.closeClient))
        XCTAssertTrue(actions.contains { if case .sessionEnded(let s) = $0 { s.ending == .timeout } else { false } })
    }

    func testIdleTimeoutEndsWithoutUpdate() {
        var t = SessionTranscript()
        t.logIn(messages: [(1, 10, "")])
        t.client("RETR 1\r\n")
        t.backend("* 1 FETCH (UID 1 BODY[] {10}\r\n0123456789)\r\nP4 OK Fetch completed.\r\n")
        t.client("DELE 1\r\n")
        _ = t.takeBackend()
        t.send(.timerFired(.idle))
        XCTAssertTrue(t.takeClient().hasSuffix("-ERR Disconnected for inactivity.\r\n"))
        XCTAssertEqual(t.takeBackend(), "Z LOGOUT\r\n", "no STORE, no EXPUNGE")
        XCTAssertEqual(t.ended?.ending, .timeout)
    }
}
