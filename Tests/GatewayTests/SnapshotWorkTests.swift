@testable import Gateway
import IMAP
import XCTest

/// The login snapshot must cost work linear in the mailbox size. Time is not measured here (that is the
/// benchmark's job, `make bench`); what is counted is how often the snapshot's storage moves. Appending in
/// place moves it only when its capacity grows (about log2(n) times); a copy-on-write copy per appended
/// message (the array kept inside a value that is copied while appending) moves it on every chunk of
/// FETCH responses, which is what made a 50,000-message login cost seconds.
final class SnapshotWorkTests: XCTestCase {
    func testSnapshotOfOneHundredThousandMessagesGrowsInPlace() {
        let count = 100_000
        var t = SessionTranscript()
        _ = t.takeClient()
        t.reachBackend()
        t.backend("P1 " + SessionTranscript.loggedIn)
        t.backend("* \(count) EXISTS\r\n* OK [UIDVALIDITY 7] UIDs valid\r\nP2 OK [READ-WRITE] Select completed.\r\n")
        XCTAssertTrue(t.takeBackend().hasSuffix("UID FETCH 1:* (UID RFC822.SIZE FLAGS)\r\n"))

        // Fed as the driver feeds it: in reads of at most 64 KiB.
        var pending: [UInt8] = []
        var chunks = 0
        var moves = 0
        var lastBase: UnsafeRawPointer?
        func deliver(_ t: inout SessionTranscript) {
            t.send(.backendDataReceived(pending))
            pending.removeAll(keepingCapacity: true)
            chunks += 1
            let base = t.session.snapshot.fetched.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
            if base != lastBase { moves += 1 }
            lastBase = base
        }
        for number in 1...count {
            let flags = number % 3 == 0 ? "\\Seen" : (number % 7 == 0 ? "\\Seen \\Deleted" : "")
            pending += Array("* \(number) FETCH (UID \(number * 2) RFC822.SIZE \(1000 + number % 977) FLAGS (\(flags)))\r\n".utf8)
            if pending.count >= 64 * 1024 - 100 { deliver(&t) }
        }
        deliver(&t)
        XCTAssertEqual(t.session.snapshot.fetched.count, count, "every FETCH response is in the snapshot")
        XCTAssertEqual(t.session.snapshot.responses, count)
        // Capacity doubling from an empty array to 100,000 elements: at most ~18 moves.
        XCTAssertGreaterThan(chunks, 50, "the test must feed many chunks to tell growth from copying")
        XCTAssertLessThanOrEqual(moves, 24, "the snapshot storage moved \(moves) times in \(chunks) chunks: copied instead of appended in place")

        XCTAssertGreaterThan(t.session.imap.bufferCapacity, 4096, "the parser's buffer grew with the snapshot")
        _ = t.takeActions()
        t.backend("P3 OK Fetch completed.\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Logged in.\r\n")
        XCTAssertEqual(t.session.snapshot.fetched.capacity, 0, "the snapshot became the maildrop")
        // Logged in and waiting for a command: once that lasts, the buffers the snapshot grew are given back.
        XCTAssertTrue(t.contains(.scheduleTimer(.releaseMemory, after: GatewaySession.idleMemoryDelay)))
        XCTAssertFalse(t.contains(.releaseIdleMemory), "not at once: the next command may come right away")
        XCTAssertGreaterThan(t.session.imap.bufferCapacity, 4096)
        t.send(.timerFired(.releaseMemory))
        XCTAssertTrue(t.contains(.releaseIdleMemory))
        XCTAssertEqual(t.session.imap.bufferCapacity, 0)
        let deleted = (1...count).filter { $0 % 3 != 0 && $0 % 7 == 0 }.count
        t.client("STAT\r\n")
        XCTAssertTrue(t.takeClient().hasPrefix("+OK \(count - deleted) "))
    }
}

final class SnapshotFlagTests: XCTestCase {
    /// Flags and keywords are case-insensitive (RFC 3501 §2.3.2): `\DELETED` and a keyword in another
    /// case hide a message like `\Deleted` and `$POP3Deleted` do; other flags do not.
    func testHiddenFlagsMatchInAnyCase() {
        var t = SessionTranscript()
        t.logIn(messages: [(1, 10, "\\DELETED"), (2, 20, "$pop3deleted \\Seen"), (3, 30, "\\Seen $POP3DeletedX"), (4, 40, "\\deleted"), (5, 50, "")])
        t.client("UIDL\r\n")
        XCTAssertEqual(t.takeClient(), "+OK\r\n1 \(uidl(3))\r\n2 \(uidl(5))\r\n.\r\n")
    }

    private func uidl(_ uid: UInt32) -> String {
        GatewaySettings().uidlFormat.uidl(uid: uid, uidValidity: 1_732_780_000)
    }
}

final class IdleMemoryTests: XCTestCase {
    /// The release timer may fire while a command is in progress: nothing is released then (the
    /// parser is mid-message), and the next idle moment schedules it again.
    func testReleaseWaitsForAnIdleSession() {
        var t = SessionTranscript()
        t.logIn(messages: [(1, 10, ""), (2, 20, "")])
        t.client("RETR 1\r\n")
        let command = t.takeBackend()
        XCTAssertTrue(command.hasSuffix(" UID FETCH 1 (BODY.PEEK[])\r\n"), command)
        let tag = String(command.prefix { $0 != " " })
        _ = t.takeActions()
        t.send(.timerFired(.releaseMemory))
        XCTAssertFalse(t.contains(.releaseIdleMemory), "a RETR is in progress")
        t.backend("* 1 FETCH (UID 1 BODY[] {10}\r\n0123456789)\r\n")
        t.backend("\(tag) OK Fetch completed.\r\n")
        XCTAssertEqual(t.takeClient(), "+OK 10 octets\r\n0123456789\r\n.\r\n")
        XCTAssertTrue(t.contains(.scheduleTimer(.releaseMemory, after: GatewaySession.idleMemoryDelay)))
        t.send(.timerFired(.releaseMemory))
        XCTAssertTrue(t.contains(.releaseIdleMemory))
    }
}

final class HeaderSnapshotWorkTests: XCTestCase {
    /// `uidl_source: header` on 100,000 messages, half with an X-UIDL: the snapshot still grows in place,
    /// the values are packed (their bytes, no String per message), and the maildrop lists them.
    func testHeaderUIDLsOfOneHundredThousandMessagesArePackedInPlace() {
        let count = 100_000
        var t = SessionTranscript(settings: GatewaySettings(uidlSource: .header, authFailureDelay: .seconds(2)))
        _ = t.takeClient()
        t.reachBackend()
        t.backend("P1 " + SessionTranscript.loggedIn)
        t.backend("* \(count) EXISTS\r\n* OK [UIDVALIDITY 7] UIDs valid\r\nP2 OK [READ-WRITE] Select completed.\r\n")
        XCTAssertTrue(t.takeBackend().hasSuffix("UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (X-UIDL)])\r\n"))

        var pending: [UInt8] = []
        var moves = (fetched: 0, bytes: 0, spans: 0)
        var bases: (UnsafeRawPointer?, UnsafeRawPointer?, UnsafeRawPointer?)
        func deliver(_ t: inout SessionTranscript) {
            t.send(.backendDataReceived(pending))
            pending.removeAll(keepingCapacity: true)
            let s = t.session.snapshot
            let now = (s.fetched.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) },
                       s.headerUIDLs.bytes.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) },
                       s.headerUIDLs.spans.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) })
            if now.0 != bases.0 { moves.fetched += 1 }
            if now.1 != bases.1 { moves.bytes += 1 }
            if now.2 != bases.2 { moves.spans += 1 }
            bases = now
        }
        for number in 1...count {
            let header = number % 2 == 0 ? "X-UIDL: old-\(number)\r\n\r\n" : "\r\n"
            pending += Array("* \(number) FETCH (UID \(number) RFC822.SIZE 100 FLAGS () BODY[HEADER.FIELDS (X-UIDL)] {\(header.utf8.count)}\r\n\(header))\r\n".utf8)
            if pending.count >= 64 * 1024 - 200 { deliver(&t) }
        }
        deliver(&t)
        XCTAssertEqual(t.session.snapshot.fetched.count, count)
        XCTAssertEqual(t.session.snapshot.headerUIDLs.count, count / 2)
        XCTAssertLessThanOrEqual(moves.fetched, 24, "fetched moved \(moves.fetched) times")
        XCTAssertLessThanOrEqual(moves.bytes, 30, "header bytes moved \(moves.bytes) times")
        XCTAssertLessThanOrEqual(moves.spans, 24, "header index moved \(moves.spans) times")
        t.backend("P3 OK Fetch completed.\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Logged in.\r\n")
        XCTAssertEqual(t.session.maildrop?.headerUIDLs?.count, count / 2)
        t.client("UIDL 1\r\nUIDL 2\r\nUIDL \(count)\r\n")
        XCTAssertEqual(t.takeClient(), "+OK 1 \(UIDLFormat.dovecotDefault.uidl(uid: 1, uidValidity: 7))\r\n+OK 2 old-2\r\n+OK \(count) old-\(count)\r\n")
    }
}
