import IMAP
import Wire
import XCTest

final class CommandEncoderTests: XCTestCase {
    private func encode(_ command: IMAPCommand, tag: String = "A1", literalPlus: Bool = false) -> [String] {
        IMAPCommandEncoder.encode(command, tag: IMAPTag(tag), literalPlus: literalPlus)
            .map { String(decoding: $0, as: UTF8.self) }
    }

    private func bytes(_ command: IMAPCommand, literalPlus: Bool = false) -> [[UInt8]] {
        IMAPCommandEncoder.encode(command, tag: IMAPTag("A1"), literalPlus: literalPlus)
    }

    func testSimpleCommands() {
        XCTAssertEqual(encode(.capability), ["A1 CAPABILITY\r\n"])
        XCTAssertEqual(encode(.noop, tag: "P12"), ["P12 NOOP\r\n"])
        XCTAssertEqual(encode(.starttls), ["A1 STARTTLS\r\n"])
        XCTAssertEqual(encode(.logout), ["A1 LOGOUT\r\n"])
    }

    func testLoginQuoted() {
        XCTAssertEqual(encode(.login(user: Secret("alice"), password: Secret("secret"))),
                       ["A1 LOGIN \"alice\" \"secret\"\r\n"])
    }

    func testLoginQuotedEscapes() {
        // The password is: pa ss"w\rd
        XCTAssertEqual(bytes(.login(user: Secret("alice"), password: Secret("pa ss\"w\\rd"))),
                       [Array("A1 LOGIN \"alice\" \"pa ss\\\"w\\\\rd\"\r\n".utf8)])
        XCTAssertEqual(encode(.login(user: Secret(""), password: Secret(""))), ["A1 LOGIN \"\" \"\"\r\n"])
    }

    func testLoginUTF8PasswordIsSynchronisingLiteral() {
        let segments = bytes(.login(user: Secret("alice"), password: Secret("pässwörd")))
        XCTAssertEqual(segments, [
            Array("A1 LOGIN \"alice\" {10}\r\n".utf8),
            Array("pässwörd".utf8) + [13, 10],
        ])
    }

    func testLoginBothLiterals() {
        let segments = encode(.login(user: Secret("jörg"), password: Secret("pässwörd")))
        XCTAssertEqual(segments, ["A1 LOGIN {5}\r\n", "jörg {10}\r\n", "pässwörd\r\n"])
    }

    func testLoginLiteralPlusIsOneSegment() {
        XCTAssertEqual(bytes(.login(user: Secret("alice"), password: Secret("pässwörd")), literalPlus: true),
                       [Array("A1 LOGIN \"alice\" {10+}\r\npässwörd\r\n".utf8)])
        XCTAssertEqual(encode(.login(user: Secret("jörg"), password: Secret("pässwörd")), literalPlus: true),
                       ["A1 LOGIN {5+}\r\njörg {10+}\r\npässwörd\r\n"])
        // Quotable strings stay quoted with LITERAL+ too.
        XCTAssertEqual(encode(.login(user: Secret("a"), password: Secret("b")), literalPlus: true), ["A1 LOGIN \"a\" \"b\"\r\n"])
    }

    func testControlAndNulBytesForceLiteral() {
        XCTAssertEqual(bytes(.login(user: Secret("a"), password: Secret([0x70, 0x0D, 0x0A, 0x71]))), [
            Array("A1 LOGIN \"a\" {4}\r\n".utf8),
            [0x70, 0x0D, 0x0A, 0x71, 0x0D, 0x0A],
        ])
        XCTAssertEqual(bytes(.login(user: Secret("a"), password: Secret([0x00, 0x41]))), [
            Array("A1 LOGIN \"a\" {2}\r\n".utf8),
            [0x00, 0x41, 0x0D, 0x0A],
        ])
        // A tab is 0x01-0x7F and not CR/LF: quoted.
        XCTAssertEqual(encode(.login(user: Secret("a"), password: Secret("x\ty"))), ["A1 LOGIN \"a\" \"x\ty\"\r\n"])
    }

    func testAuthenticatePlain() {
        let payload = Secret(Base64.encode(Array("\0alice\0secret".utf8)))
        XCTAssertEqual(encode(.authenticatePlain(initialResponse: payload)), ["A1 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n"])
        XCTAssertEqual(encode(.authenticatePlain(initialResponse: nil)), ["A1 AUTHENTICATE PLAIN\r\n"])
        XCTAssertEqual(encode(.authenticatePlain(initialResponse: Secret(""))), ["A1 AUTHENTICATE PLAIN =\r\n"])
    }

    func testContinuationResponse() {
        XCTAssertEqual(IMAPCommandEncoder.continuationResponse(Secret("AGFsaWNlAHNlY3JldA==")),
                       Array("AGFsaWNlAHNlY3JldA==\r\n".utf8))
        XCTAssertEqual(IMAPCommandEncoder.continuationResponse(Secret("*")), Array("*\r\n".utf8))
    }

    func testSelectAndCreate() {
        XCTAssertEqual(encode(.select(mailbox: "INBOX"), tag: "A3"), ["A3 SELECT \"INBOX\"\r\n"])
        XCTAssertEqual(encode(.select(mailbox: "Entwürfe")), ["A1 SELECT \"Entw&APw-rfe\"\r\n"])
        XCTAssertEqual(encode(.select(mailbox: "a \"b\" \\c")), ["A1 SELECT \"a \\\"b\\\" \\\\c\"\r\n"])
        XCTAssertEqual(encode(.create(mailbox: "Trash")), ["A1 CREATE \"Trash\"\r\n"])
        XCTAssertEqual(encode(.create(mailbox: "Tom & Jerry")), ["A1 CREATE \"Tom &- Jerry\"\r\n"])
    }

    func testUIDFetch() {
        XCTAssertEqual(encode(.uidFetch(.all, items: [.uid, .rfc822Size, .flags])),
                       ["A1 UID FETCH 1:* (UID RFC822.SIZE FLAGS)\r\n"])
        XCTAssertEqual(encode(.uidFetch(UIDSet([UID(7)]), items: [.bodyPeek(partial: nil)])),
                       ["A1 UID FETCH 7 (BODY.PEEK[])\r\n"])
        XCTAssertEqual(encode(.uidFetch(UIDSet([UID(7)]), items: [.bodyPeek(partial: .init(offset: 8192, length: 4096))])),
                       ["A1 UID FETCH 7 (BODY.PEEK[]<8192.4096>)\r\n"])
        XCTAssertEqual(encode(.uidFetch(UIDSet([UID(1), UID(2), UID(3), UID(5)]), items: [.uid, .bodyPeek(partial: nil)])),
                       ["A1 UID FETCH 1:3,5 (UID BODY.PEEK[])\r\n"])
    }

    func testUIDStore() {
        let set = UIDSet([UID(5), UID(3)])
        XCTAssertEqual(encode(.uidStore(set, addFlags: ["\\Seen", "$POP3Deleted"], silent: true)),
                       ["A1 UID STORE 3,5 +FLAGS.SILENT (\\Seen $POP3Deleted)\r\n"])
        XCTAssertEqual(encode(.uidStore(set, addFlags: ["\\Deleted"], silent: false)),
                       ["A1 UID STORE 3,5 +FLAGS (\\Deleted)\r\n"])
    }

    func testUIDExpungeMoveCopy() {
        let set = UIDSet([UID(1), UID(2), UID(3), UID(7)])
        XCTAssertEqual(encode(.uidExpunge(set)), ["A1 UID EXPUNGE 1:3,7\r\n"])
        XCTAssertEqual(encode(.uidMove(UIDSet([UID(3), UID(5)]), mailbox: "Trash")), ["A1 UID MOVE 3,5 \"Trash\"\r\n"])
        XCTAssertEqual(encode(.uidCopy(UIDSet([UID(3), UID(5)]), mailbox: "Gelöscht")), ["A1 UID COPY 3,5 \"Gel&APY-scht\"\r\n"])
    }

    func testIsValidFlag() {
        XCTAssertTrue(IMAPCommandEncoder.isValidFlag("\\Seen"))
        XCTAssertTrue(IMAPCommandEncoder.isValidFlag("$POP3Deleted"))
        XCTAssertFalse(IMAPCommandEncoder.isValidFlag(""))
        XCTAssertFalse(IMAPCommandEncoder.isValidFlag("\\"))
        XCTAssertFalse(IMAPCommandEncoder.isValidFlag("two words"))
        XCTAssertFalse(IMAPCommandEncoder.isValidFlag("x)\r\nA2 LOGOUT"))
        XCTAssertFalse(IMAPCommandEncoder.isValidFlag("gelöscht"))
    }
}
