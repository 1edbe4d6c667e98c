import POP3
import Wire
import XCTest

final class SASLPlainTests: XCTestCase {
    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    func testDecodeRFC4616Example() {
        // RFC 4616 §4: NUL "tim" NUL "tanstaaftanstaaf".
        let decoded = SASLPlain.decode(base64: bytes("AHRpbQB0YW5zdGFhZnRhbnN0YWFm"))
        XCTAssertEqual(decoded, SASLPlain(authorizationIdentity: "", authenticationIdentity: "tim",
                                          password: Secret("tanstaaftanstaaf")))
    }

    func testDecodeWithAuthorizationIdentity() {
        // "Ursel" NUL "Kurt" NUL "xipj3plmq"
        let decoded = SASLPlain.decode(base64: bytes("VXJzZWwAS3VydAB4aXBqM3BsbXE="))
        XCTAssertEqual(decoded?.authorizationIdentity, "Ursel")
        XCTAssertEqual(decoded?.authenticationIdentity, "Kurt")
        XCTAssertEqual(decoded?.password.bytes, bytes("xipj3plmq"))
    }

    func testEncodeIsByteExact() {
        let plain = SASLPlain(authorizationIdentity: "", authenticationIdentity: "tim", password: Secret("tanstaaftanstaaf"))
        XCTAssertEqual(plain.encodedBase64().bytes, bytes("AHRpbQB0YW5zdGFhZnRhbnN0YWFm"))
        let withAuthz = SASLPlain(authorizationIdentity: "Ursel", authenticationIdentity: "Kurt", password: Secret("xipj3plmq"))
        XCTAssertEqual(withAuthz.encodedBase64().bytes, bytes("VXJzZWwAS3VydAB4aXBqM3BsbXE="))
    }

    func testRoundTrip() {
        let samples = [
            SASLPlain(authorizationIdentity: "", authenticationIdentity: "bob@example.org", password: Secret("p a s s")),
            SASLPlain(authorizationIdentity: "admin", authenticationIdentity: "jürgen", password: Secret("pässwörd 🔑")),
            SASLPlain(authorizationIdentity: "", authenticationIdentity: "x", password: Secret([0xFF, 0x01, 0x80])),
            SASLPlain(authorizationIdentity: "", authenticationIdentity: "x", password: Secret([])),
        ]
        for sample in samples {
            XCTAssertEqual(SASLPlain.decode(base64: sample.encodedBase64().bytes), sample)
        }
    }

    func testMalformed() {
        func encoded(_ raw: [UInt8]) -> [UInt8] { Base64.encode(raw) }
        XCTAssertNil(SASLPlain.decode(base64: bytes("not base64!")))
        XCTAssertNil(SASLPlain.decode(base64: bytes("AHRpbQB0YW5zdGFhZnRhbnN0YWF")))  // length not a multiple of 4
        XCTAssertNil(SASLPlain.decode(base64: []))                                   // empty: no NULs
        XCTAssertNil(SASLPlain.decode(base64: encoded(bytes("timpassword"))))          // no NUL
        XCTAssertNil(SASLPlain.decode(base64: encoded(bytes("tim") + [0] + bytes("pw")))) // one NUL
        XCTAssertNil(SASLPlain.decode(base64: encoded([0, 0] + bytes("pw"))))          // empty authcid
        XCTAssertNil(SASLPlain.decode(base64: encoded([0] + bytes("tim") + [0] + bytes("p") + [0] + bytes("w")))) // three NULs
        XCTAssertNil(SASLPlain.decode(base64: encoded([0] + bytes("tim") + [0, 0])))   // three NULs, trailing
        XCTAssertNil(SASLPlain.decode(base64: encoded([0, 0xC3, 0x28, 0] + bytes("pw")))) // authcid not UTF-8
        XCTAssertNil(SASLPlain.decode(base64: encoded([0xFF, 0, 0x41, 0] + bytes("pw")))) // authzid not UTF-8
    }

    func testPasswordIsRedacted() {
        let plain = SASLPlain(authorizationIdentity: "", authenticationIdentity: "tim", password: Secret("hunter2"))
        XCTAssertFalse(String(describing: plain).contains("hunter2"))
        XCTAssertFalse(String(reflecting: plain).contains("hunter2"))
        XCTAssertFalse("\(plain.encodedBase64())".contains(String(decoding: plain.encodedBase64().bytes, as: UTF8.self)))
    }
}
