@testable import Gateway
import IMAP
import XCTest

/// `uidl_source: header`: X-UIDL headers fetched with the snapshot, used when usable and unique.
final class HeaderUIDLSessionTests: XCTestCase {
    private let validity: UInt32 = 1_732_780_000

    private func format(_ uid: UInt32) -> String { UIDLFormat.dovecotDefault.uidl(uid: uid, uidValidity: validity) }

    /// Logs in with `uidl_source: header`; each message is (uid, size, flags, header answer or nil for none).
    private func logIn(_ messages: [(UInt32, UInt64, String, String?)]) -> SessionTranscript {
        var t = SessionTranscript(settings: GatewaySettings(uidlSource: .header, authFailureDelay: .seconds(2)))
        _ = t.takeClient()
        t.reachBackend()
        let sent = t.takeBackend()
        XCTAssertTrue(sent.hasSuffix("P3 UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (X-UIDL)])\r\n"), sent)
        t.backend("P1 " + SessionTranscript.loggedIn)
        t.backend(SessionTranscript.selected(exists: messages.count, uidValidity: validity))
        var answer = ""
        for (index, m) in messages.enumerated() {
            let header = (m.3.map { "X-UIDL: \($0)\r\n" } ?? "") + "\r\n"
            answer += "* \(index + 1) FETCH (UID \(m.0) RFC822.SIZE \(m.1) FLAGS (\(m.2)) BODY[HEADER.FIELDS (X-UIDL)] {\(header.utf8.count)}\r\n\(header))\r\n"
        }
        t.backend(answer + "P3 OK Fetch completed.\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Logged in.\r\n")
        return t
    }

    func testHeaderValuesBecomeUIDLsAndTheRestUseTheFormat() {
        let tooLong = String(repeating: "x", count: 71)
        let seventy = String(repeating: "y", count: 70)
        var t = logIn([
            (1, 10, "", "UW-00000001"),
            (2, 20, "", nil),
            (3, 30, "", tooLong),           // longer than RFC 1939's 70: not used
            (4, 40, "", "has space"),       // a space inside: not used
            (5, 50, "", seventy),
            (6, 60, "", "caf\u{e9}"),       // 8-bit: not used
            (7, 70, "\\Deleted", "hidden"), // not listed, so not in the way of anyone
        ])
        t.client("UIDL\r\n")
        XCTAssertEqual(t.takeClient(), "+OK\r\n1 UW-00000001\r\n2 \(format(2))\r\n3 \(format(3))\r\n4 \(format(4))\r\n5 \(seventy)\r\n6 \(format(6))\r\n.\r\n")
        t.client("UIDL 1\r\nUIDL 4\r\nUIDL 5\r\n")
        XCTAssertEqual(t.takeClient(), "+OK 1 UW-00000001\r\n+OK 4 \(format(4))\r\n+OK 5 \(seventy)\r\n")
        let login = t.actions.compactMap { action -> LogRecord? in
            if case .log(let record) = action, record.message == "logged in" { return record }
            return nil
        }.first
        XCTAssertEqual(login?.fields[LogKey.headerUIDLs], "2")
        XCTAssertEqual(login?.fields[LogKey.headerUIDLsIgnored], "3")
    }

    /// RFC 1939 §7: unique-ids are unique in the maildrop. The first message (in UID order) with a value
    /// keeps it; later ones, and a value equal to another message's format UIDL, fall back to the format.
    func testDuplicatesFallBackToTheFormat() {
        var t = logIn([
            (1, 10, "", "same"),
            (2, 20, "", "same"),
            (3, 30, "", format(4)),   // message 4's format UIDL
            (4, 40, "", nil),
            (5, 50, "", format(5)),   // its own format UIDL: harmless
            (6, 60, "", "SAME"),      // UIDLs are case-sensitive
        ])
        t.client("UIDL\r\n")
        let listing = t.takeClient()
        XCTAssertEqual(listing, "+OK\r\n1 same\r\n2 \(format(2))\r\n3 \(format(3))\r\n4 \(format(4))\r\n5 \(format(5))\r\n6 SAME\r\n.\r\n")
        let uidls = listing.split(separator: "\r\n").dropFirst().dropLast().map { $0.split(separator: " ")[1] }
        XCTAssertEqual(Set(uidls).count, uidls.count, "unique")
    }

    func testWithoutTheSettingNothingIsFetchedAndHeadersAreIgnored() {
        var t = SessionTranscript()
        _ = t.takeClient()
        t.reachBackend()
        XCTAssertTrue(t.takeBackend().hasSuffix("P3 UID FETCH 1:* (UID RFC822.SIZE FLAGS)\r\n"))
        t.backend("P1 " + SessionTranscript.loggedIn)
        t.backend(SessionTranscript.selected(exists: 1, uidValidity: validity))
        // A server that sends the header anyway is not followed.
        t.backend("* 1 FETCH (UID 1 RFC822.SIZE 10 FLAGS () BODY[HEADER.FIELDS (X-UIDL)] {13}\r\nX-UIDL: abc\r\n)\r\nP3 OK Fetch completed.\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Logged in.\r\n")
        XCTAssertNil(t.session.maildrop?.headerUIDLs)
        t.client("UIDL 1\r\n")
        XCTAssertEqual(t.takeClient(), "+OK 1 \(format(1))\r\n")
    }

    func testResolutionWithUnorderedAndRepeatedCandidates() {
        var candidates = HeaderUIDLs()
        candidates.append(key: 9, Array("nine".utf8))
        candidates.append(key: 3, Array("three".utf8))
        candidates.append(key: 3, Array("three-again".utf8))
        candidates.append(key: 5, Array("nine".utf8))
        let entries = [3, 5, 9].map { Maildrop.Entry(uid: UID($0), size: 1) }
        let (used, ignored) = Maildrop.resolveHeaderUIDLs(entries: entries, candidates: candidates, format: .dovecotDefault, uidValidity: UIDValidity(1))
        XCTAssertEqual(used.value(forKey: 0).map(Array.init), Array("three".utf8), "the first value for a UID")
        XCTAssertEqual(used.value(forKey: 1).map(Array.init), Array("nine".utf8), "UID 5 comes before UID 9")
        XCTAssertNil(used.value(forKey: 2))
        XCTAssertEqual(ignored, 1)
    }
}

/// `uidl_hash` / `uidl_change` and the table of the users' last sessions.
final class UIDLChangeTests: XCTestCase {
    private func drop(_ uids: [UInt32], validity: UInt32 = 7, size: (UInt32) -> UInt64 = { 1000 + UInt64($0) }) -> Maildrop {
        Maildrop(entries: uids.map { Maildrop.Entry(uid: UID($0), size: size($0)) }, uidValidity: UIDValidity(validity))
    }

    private func observe(_ drop: Maildrop, after previous: Maildrop?) -> UIDLObservation {
        let sample = previous.map { $0.observeUIDLs(format: .dovecotDefault, previous: nil) { _ in true }.sample }
        return drop.observeUIDLs(format: .dovecotDefault, previous: sample) { _ in true }
    }

    func testSampleKeepsTheSmallestHashesOnce() {
        var sample = UIDLSample()
        for hash in [UInt64(50), 10, 90, 10, 30, 70, 20, 60, 80, 40, 5] { sample.offer(.init(hash: hash, size: hash)) }
        XCTAssertEqual(sample.items.map(\.hash), [5, 10, 20, 30, 40, 50, 60, 70])
        XCTAssertEqual(UIDLSample(items: sample.items.reversed()), sample, "order does not matter")
    }

    func testNewMailAndDeletionsAreNoChange() {
        let before = drop(Array(1...20))
        XCTAssertEqual(observe(before, after: nil).change, .first)
        XCTAssertEqual(observe(before, after: before).change, .no, "the same set")
        XCTAssertEqual(observe(drop(Array(1...30)), after: before).change, .no, "new mail")
        XCTAssertEqual(observe(drop(Array(11...25)), after: before).change, .no, "half deleted, new mail")
        XCTAssertEqual(observe(drop([]), after: before).change, .no, "all deleted")
        // Everything deleted elsewhere, new mail of other sizes: nothing the client knew is still there.
        XCTAssertEqual(observe(drop(Array(100...130), size: { 50_000 + UInt64($0) }), after: before).change, .no)
    }

    func testTheSameMailUnderNewUIDLsIsAChange() {
        let before = drop(Array(1...20), validity: 7)
        let after = drop(Array(1...20), validity: 8)
        let observation = observe(after, after: before)
        XCTAssertEqual(observation.change, .yes, "UIDVALIDITY changed: every UIDL is new, every size still there")
        XCTAssertEqual(observe(drop(Array(1...25), validity: 8), after: before).change, .yes, "also with new mail")
        XCTAssertNotEqual(observation.shortHash, observe(before, after: nil).shortHash)
        // Another format for the same mailbox is the same kind of change.
        let sample = before.observeUIDLs(format: .dovecotDefault, previous: nil) { _ in true }.sample
        XCTAssertEqual(before.observeUIDLs(format: try UIDLFormat(configured: "uw-imap"), previous: sample) { _ in true }.change, .yes)
    }

    func testSetHashIsFNV1aOfTheListedUIDLs() {
        // FNV-1a 64 of "0000000100000007\n0000000200000007\n", first 32 bits.
        var fnv = FNV1a64()
        fnv.add(Array("0000000100000007\n0000000200000007\n".utf8))
        let observation = observe(drop([1, 2]), after: nil)
        XCTAssertEqual(observation.setHash, fnv.value)
        XCTAssertEqual(observation.shortHash.count, 8)
        XCTAssertEqual(observation.shortHash, String(fnv.value >> 32, radix: 16).leftPadded(to: 8))
        XCTAssertEqual(FNV1a64.hash([UInt8]()), 0xcbf2_9ce4_8422_2325)
        XCTAssertEqual(FNV1a64.hash(Array("a".utf8)), 0xaf63_dc4c_8601_ec8c, "the published FNV-1a 64 test vector")
    }

    func testHistoryIsBoundedLeastRecentlyUsed() {
        var history = UIDLHistory(capacity: 3)
        let sample = UIDLSample(items: [.init(hash: 1, size: 1)])
        for user in ["a", "b", "c"] { history.remember(user, sample) }
        XCTAssertNotNil(history.recall("a"), "a is now the most recently used")
        history.remember("d", sample)
        XCTAssertEqual(history.count, 3)
        XCTAssertNil(history.recall("b"), "b was the least recently used")
        XCTAssertNotNil(history.recall("a"))
        XCTAssertNotNil(history.recall("c"))
        XCTAssertNotNil(history.recall("d"))
        // Many updates of few users keep the bookkeeping small.
        for round in 0..<10_000 { history.remember(["a", "c", "d"][round % 3], sample) }
        XCTAssertEqual(history.count, 3)
        var none = UIDLHistory(capacity: 0)
        none.remember("a", sample)
        XCTAssertNil(none.recall("a"))
    }

    /// The machine asks for the previous sample at login and leaves its own at the end; the summary says
    /// what happened, a change is also logged as a warning.
    func testSessionReportsAndRemembers() {
        let messages: [(UInt32, UInt64, String)] = [(1, 10, ""), (2, 20, ""), (3, 30, "")]
        var first = SessionTranscript()
        first.logIn(messages: messages, uidValidity: 100)
        XCTAssertTrue(first.contains(.lookUpUIDLHistory(user: "alice")))
        first.client("DELE 2\r\nQUIT\r\n")
        _ = first.takeBackend()
        first.backend("P4 OK Store completed.\r\n")
        XCTAssertEqual(first.ended?.uidlChange, .first)
        let remembered = first.actions.compactMap { action -> UIDLSample? in
            if case .rememberUIDLHistory(let user, let sample) = action, user == "alice" { return sample }
            return nil
        }
        XCTAssertEqual(remembered.count, 1)
        XCTAssertEqual(remembered.first?.items.count, 2, "message 2 was flagged at QUIT: not listed next time")

        var second = SessionTranscript()
        second.previousUIDLs = remembered.first
        second.logIn(messages: [(1, 10, ""), (3, 30, ""), (4, 40, "")], uidValidity: 100)
        second.client("QUIT\r\n")
        XCTAssertEqual(second.ended?.uidlChange, UIDLChange.no)
        XCTAssertFalse(second.actions.contains { if case .log(let r) = $0 { return r.level == .warning } else { return false } })

        var third = SessionTranscript()
        third.previousUIDLs = remembered.first
        third.logIn(messages: [(1, 10, ""), (3, 30, "")], uidValidity: 101)
        third.client("QUIT\r\n")
        XCTAssertEqual(third.ended?.uidlChange, .yes)
        XCTAssertEqual(third.ended?.uidlHash?.count, 8)
        XCTAssertTrue(third.actions.contains { if case .log(let r) = $0 { return r.level == .warning && r.message.hasPrefix("UIDLs changed") } else { return false } })
    }

    func testSessionsThatDidNotLogInReportNothing() {
        var t = SessionTranscript()
        _ = t.takeClient()
        t.client("QUIT\r\n")
        XCTAssertNil(t.ended?.uidlHash)
        XCTAssertNil(t.ended?.uidlChange)
        XCTAssertFalse(t.actions.contains { if case .rememberUIDLHistory = $0 { return true } else { return false } })
    }
}

private extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
