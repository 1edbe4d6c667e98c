import Gateway
import XCTest

/// `retention.move_to: auto`: the folder DELE'd mail moves to is the backend's special-use `\Trash`
/// mailbox (RFC 6154), else the personal namespace prefix (RFC 2342) + `Trash`, else `Trash`; found in
/// the login's own flight where the capabilities allow, and only for a session that moves.
final class GatewaySessionTrashTests: XCTestCase {
    static let select = SessionTranscript.selected(exists: 1) + "* 1 FETCH (UID 7 RFC822.SIZE 5 FLAGS ())\r\nP3 OK Fetch completed.\r\n"
    static let dovecotLoggedIn = "P1 OK [CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS LIST-EXTENDED SPECIAL-USE LITERAL+ MOVE] Logged in\r\n"
    static let list = "P4 LIST \"\" \"*\"\r\n"

    func session(moveTo: String? = nil, onDelete: RetentionPolicy.OnDelete = .move, greeting: String = SessionTranscript.greeting) -> SessionTranscript {
        var t = SessionTranscript(policy: SessionPolicy(retention: RetentionPolicy(onRetrieve: .none, onDelete: onDelete, moveTo: moveTo)))
        _ = t.takeClient()
        t.client("USER alice\r\nPASS secret\r\n")
        t.send(.backendConnected(encrypted: true))
        t.backend(greeting)
        _ = t.takeClient()
        return t
    }

    func testSpecialUseTrashFromThePlainListOfTheOneFlight() {
        var t = session()
        XCTAssertEqual(t.takeBackend(), SessionTranscript.loginFlight() + Self.list, "LIST rides in the login's one flight")
        t.backend(Self.dovecotLoggedIn + Self.select)
        t.backend("* LIST (\\HasNoChildren) \"/\" INBOX\r\n* LIST (\\HasNoChildren \\Trash) \"/\" \"Deleted Messages\"\r\n"
            + "* LIST (\\HasNoChildren \\Trash) \"/\" \"Second Trash\"\r\nP4 OK List completed.\r\n")
        XCTAssertEqual(t.takeBackend(), "", "one round trip: the \\Trash attribute of the plain LIST decided")
        XCTAssertEqual(t.takeClient(), "+OK Logged in.\r\n")
        XCTAssertTrue(t.actions.contains { if case .log(let r) = $0 { r.fields[LogKey.trash] == "special-use" } else { false } })
        XCTAssertEqual(quitMove(&t, tag: 5), "P6 UID MOVE 7 \"Deleted Messages\"\r\n")
    }

    func testListAnsweredOutOfOrderAndInsideTheSnapshot() {
        // Dovecot runs a LIST pipelined behind a FETCH at once and may answer it first (RFC 3501 §5.5).
        var t = session()
        _ = t.takeBackend()
        t.backend(Self.dovecotLoggedIn + SessionTranscript.selected(exists: 2) + "* 1 FETCH (UID 7 RFC822.SIZE 5 FLAGS ())\r\n"
            + "* LIST (\\Trash) \"/\" Bin\r\nP4 OK List completed.\r\n")
        XCTAssertEqual(t.takeClient(), "", "the snapshot is not complete yet")
        t.backend("* 2 FETCH (UID 8 RFC822.SIZE 6 FLAGS ())\r\nP3 OK Fetch completed.\r\n")
        XCTAssertEqual(t.takeBackend(), "")
        XCTAssertEqual(t.takeClient(), "+OK Logged in.\r\n")
        t.client("STAT\r\n")
        XCTAssertEqual(t.takeClient(), "+OK 2 11\r\n")
        XCTAssertEqual(quitMove(&t, tag: 5), "P6 UID MOVE 7 \"Bin\"\r\n")
    }

    func testAnUnansweredListRunsIntoTheBackendDeadline() {
        var t = session()
        _ = t.takeBackend()
        t.backend(Self.dovecotLoggedIn + Self.select)
        XCTAssertEqual(t.takeClient(), "")
        XCTAssertEqual(t.actions.last, .scheduleTimer(.backend, after: GatewaySettings().backendTimeout), "the wait for the LIST has a deadline")
        t.send(.timerFired(.backend))
        XCTAssertEqual(t.takeClient(), "-ERR [SYS/TEMP] Backend server unavailable, try again later.\r\n")
    }

    func testSpecialUseReturnOptionWhenAdvertisedBeforeLogin() {
        let greeting = "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ AUTH=PLAIN SPECIAL-USE LIST-EXTENDED] ready\r\n"
        var t = session(greeting: greeting)
        XCTAssertEqual(t.takeBackend(), SessionTranscript.loginFlight() + "P4 LIST \"\" \"*\" RETURN (SPECIAL-USE)\r\n")
        t.backend(Self.dovecotLoggedIn + Self.select + "* LIST (\\Trash) \"/\" Bin\r\nP4 OK done\r\n")
        XCTAssertEqual(t.takeBackend(), "")
        XCTAssertEqual(t.takeClient(), "+OK Logged in.\r\n")
        XCTAssertEqual(quitMove(&t, tag: 5), "P6 UID MOVE 7 \"Bin\"\r\n")
    }

    func testPlainListWithoutTrashAsksTheSpecialUseListAndNamespaceTogether() {
        // A server that advertises SPECIAL-USE only after login and leaves attributes out of a plain LIST.
        var t = session()
        _ = t.takeBackend()
        t.backend(Self.dovecotLoggedIn + Self.select + "* LIST () \"/\" INBOX\r\n* LIST () \"/\" Bin\r\nP4 OK done\r\n")
        XCTAssertEqual(t.takeBackend(), "P5 LIST \"\" \"*\" RETURN (SPECIAL-USE)\r\nP6 NAMESPACE\r\n", "one follow-up flight")
        XCTAssertEqual(t.takeClient(), "", "the maildrop waits for the folder")
        t.backend("* LIST (\\Trash) \"/\" Bin\r\n* LIST () \"/\" INBOX\r\nP5 OK done\r\n* NAMESPACE ((\"\" \"/\")) NIL NIL\r\nP6 OK done\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Logged in.\r\n")
        XCTAssertEqual(quitMove(&t, tag: 7), "P8 UID MOVE 7 \"Bin\"\r\n")
    }

    func testNoSpecialUseNamespaceINBOXDotGivesINBOXDotTrash() {
        // Cyrus and Courier: personal folders under "INBOX.", NAMESPACE after login, no special use.
        var t = session()
        _ = t.takeBackend()
        t.backend("P1 OK [CAPABILITY IMAP4rev1 NAMESPACE UIDPLUS MOVE LITERAL+] Logged in\r\n" + Self.select
            + "* LIST (\\HasChildren) \".\" INBOX\r\n* LIST (\\HasNoChildren) \".\" INBOX.Sent\r\nP4 OK done\r\n")
        XCTAssertEqual(t.takeBackend(), "P5 NAMESPACE\r\n")
        t.backend("* NAMESPACE ((\"INBOX.\" \".\")) NIL ((\"\" \".\"))\r\nP5 OK done\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Logged in.\r\n")
        XCTAssertTrue(t.actions.contains { if case .log(let r) = $0 { r.fields[LogKey.trash] == "namespace" } else { false } })
        XCTAssertEqual(quitMove(&t, tag: 6), "P7 UID MOVE 7 \"INBOX.Trash\"\r\n")
    }

    func testNamespaceAdvertisedBeforeLoginGoesInTheOneFlight() {
        let greeting = "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ AUTH=PLAIN NAMESPACE] ready\r\n"
        var t = session(greeting: greeting)
        XCTAssertEqual(t.takeBackend(), SessionTranscript.loginFlight() + Self.list + "P5 NAMESPACE\r\n")
        t.backend("P1 OK [CAPABILITY IMAP4rev1 NAMESPACE UIDPLUS MOVE] Logged in\r\n" + Self.select
            + "* LIST () \".\" INBOX\r\nP4 OK done\r\n* NAMESPACE ((\"INBOX.\" \".\")) NIL NIL\r\nP5 OK done\r\n")
        XCTAssertEqual(t.takeBackend(), "")
        XCTAssertEqual(t.takeClient(), "+OK Logged in.\r\n")
        XCTAssertEqual(quitMove(&t, tag: 6), "P7 UID MOVE 7 \"INBOX.Trash\"\r\n")
    }

    func testEmptyNamespacePrefixGivesTrash() {
        var t = session()
        _ = t.takeBackend()
        t.backend("P1 OK [CAPABILITY IMAP4rev1 NAMESPACE UIDPLUS MOVE] Logged in\r\n" + Self.select + "* LIST () \".\" INBOX\r\nP4 OK done\r\n")
        XCTAssertEqual(t.takeBackend(), "P5 NAMESPACE\r\n")
        t.backend("* NAMESPACE ((\"\" \".\")) NIL NIL\r\nP5 OK done\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Logged in.\r\n")
        XCTAssertEqual(quitMove(&t, tag: 6), "P7 UID MOVE 7 \"Trash\"\r\n")
    }

    func testNeitherSpecialUseNorNamespaceGivesTrash() {
        // pymap: no SPECIAL-USE, no NAMESPACE: nothing more is asked.
        var t = session(greeting: "* OK [CAPABILITY IMAP4rev1 LITERAL+ ID AUTH=PLAIN AUTH=LOGIN] Server ready\r\n")
        XCTAssertEqual(t.takeBackend(), "P1 AUTHENTICATE PLAIN\r\n", "no SASL-IR: the payload waits for the continuation")
        t.backend("+ \r\n")
        _ = t.takeBackend()
        t.backend("P1 OK [CAPABILITY IMAP4rev1 LITERAL+ ID BINARY UIDPLUS MOVE CHILDREN IDLE] Authentication successful.\r\n")
        XCTAssertEqual(t.takeBackend(), "P2 SELECT \"INBOX\"\r\nP3 UID FETCH 1:* (UID RFC822.SIZE FLAGS)\r\n" + Self.list)
        t.backend(Self.select + "* LIST (\\HasNoChildren) \"/\" INBOX\r\nP4 OK LIST completed.\r\n")
        XCTAssertEqual(t.takeBackend(), "")
        XCTAssertEqual(t.takeClient(), "+OK Logged in.\r\n")
        XCTAssertTrue(t.actions.contains { if case .log(let r) = $0 { r.fields[LogKey.trash] == "default" } else { false } })
        XCTAssertEqual(quitMove(&t, tag: 5), "P6 UID MOVE 7 \"Trash\"\r\n")
    }

    func testRefusedListAndNamespaceGiveTrash() {
        var t = session()
        _ = t.takeBackend()
        t.backend("P1 OK [CAPABILITY IMAP4rev1 NAMESPACE UIDPLUS MOVE] Logged in\r\n" + Self.select + "P4 BAD Error in IMAP command\r\n")
        XCTAssertEqual(t.takeBackend(), "P5 NAMESPACE\r\n")
        t.backend("P5 NO not now\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Logged in.\r\n")
        XCTAssertEqual(quitMove(&t, tag: 6), "P7 UID MOVE 7 \"Trash\"\r\n")
    }

    func testExplicitNameIsExactAndNothingIsListed() {
        var t = session(moveTo: "Deleted Items/POP")
        XCTAssertEqual(t.takeBackend(), SessionTranscript.loginFlight())
        t.backend(Self.dovecotLoggedIn + Self.select)
        XCTAssertEqual(t.takeBackend(), "")
        XCTAssertEqual(t.takeClient(), "+OK Logged in.\r\n")
        XCTAssertEqual(quitMove(&t, tag: 4), "P5 UID MOVE 7 \"Deleted Items/POP\"\r\n")
    }

    func testPoliciesThatDoNotMoveListNothing() {
        for policy in [RetentionPolicy.OnDelete.flag, .keep, .expunge] {
            var t = session(onDelete: policy)
            XCTAssertEqual(t.takeBackend(), SessionTranscript.loginFlight(), "\(policy)")
            t.backend(Self.dovecotLoggedIn + Self.select)
            XCTAssertEqual(t.takeBackend(), "", "\(policy)")
            XCTAssertEqual(t.takeClient(), "+OK Logged in.\r\n", "\(policy)")
        }
    }

    func testExpungeFallingBackToMoveFindsTheTrashInAFollowUpFlight() {
        var t = session(onDelete: .expunge)
        XCTAssertEqual(t.takeBackend(), SessionTranscript.loginFlight())
        t.backend("P1 OK [CAPABILITY IMAP4rev1 MOVE SPECIAL-USE] Logged in\r\n" + Self.select)
        XCTAssertEqual(t.takeBackend(), Self.list)
        t.backend("* LIST (\\Trash) \"/\" Papierkorb\r\nP4 OK done\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Logged in.\r\n")
        XCTAssertEqual(quitMove(&t, tag: 5), "P6 UID MOVE 7 \"Papierkorb\"\r\n")
    }

    func testModifiedUTF7NameIsSentBackAsListed() {
        var t = session()
        _ = t.takeBackend()
        t.backend(Self.dovecotLoggedIn + Self.select + "* LIST (\\Trash) \"/\" \"Gel&APY-schte Elemente\"\r\n* LIST (\\Noselect \\Trash) \"/\" X\r\nP4 OK done\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Logged in.\r\n")
        XCTAssertEqual(quitMove(&t, tag: 5), "P6 UID MOVE 7 \"Gel&APY-schte Elemente\"\r\n")
    }

    func testNoselectTrashIsPassedOver() {
        var t = session()
        _ = t.takeBackend()
        t.backend(Self.dovecotLoggedIn + Self.select + "* LIST (\\Noselect \\Trash) \"/\" X\r\n* LIST (\\NonExistent \\Trash) \"/\" Y\r\nP4 OK done\r\n")
        XCTAssertEqual(t.takeBackend(), "P5 LIST \"\" \"*\" RETURN (SPECIAL-USE)\r\nP6 NAMESPACE\r\n")
        t.backend("P5 OK done\r\n* NAMESPACE ((\"\" \"/\")) NIL NIL\r\nP6 OK done\r\n")
        XCTAssertEqual(quitMove(&t, tag: 7), "P8 UID MOVE 7 \"Trash\"\r\n")
    }

    func testTrashThatIsTheMaildropFailsTheLogin() {
        var t = session()
        _ = t.takeBackend()
        t.backend(Self.dovecotLoggedIn + Self.select + "* LIST (\\Trash) \"/\" INBOX\r\nP4 OK done\r\n")
        XCTAssertEqual(t.takeClient(), "-ERR [SYS/PERM] Backend cannot delete safely.\r\n")
        XCTAssertEqual(t.takeBackend(), "Z LOGOUT\r\n")
    }

    func testFailedLoginDropsTheListBehindIt() {
        var t = session()
        _ = t.takeBackend()
        t.backend("P1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\nP2 BAD not authenticated\r\n")
        XCTAssertEqual(t.takeBackend(), "Z LOGOUT\r\n")
        t.send(.timerFired(.authFailureDelay))
        XCTAssertEqual(t.takeClient(), "-ERR [AUTH] Authentication failed.\r\n")
    }

    /// DELE 1 and QUIT after a login whose last tag was `tag - 1`: the line after the `\Seen` store.
    private func quitMove(_ t: inout SessionTranscript, tag: Int) -> String {
        t.client("DELE 1\r\nQUIT\r\n")
        _ = t.takeClient()
        XCTAssertEqual(t.takeBackend(), "P\(tag) UID STORE 7 +FLAGS.SILENT (\\Seen)\r\n")
        t.backend("P\(tag) OK Store completed.\r\n")
        return t.takeBackend()
    }
}
