import Wire
import XCTest

final class Base64Tests: XCTestCase {
    func testRFC4648Vectors() {
        let vectors: [(String, String)] = [
            ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy"),
        ]
        for (plain, encoded) in vectors {
            XCTAssertEqual(String(decoding: Base64.encode(Array(plain.utf8)), as: UTF8.self), encoded)
            XCTAssertEqual(Base64.decode(Array(encoded.utf8)), Array(plain.utf8))
        }
    }

    func testRoundTripOfAllByteValues() {
        let bytes = (0...255).map { UInt8($0) }
        for length in 0...bytes.count {
            let slice = Array(bytes[0..<length])
            XCTAssertEqual(Base64.decode(Base64.encode(slice)), slice)
        }
    }

    func testRejectsMalformedInput() {
        for bad in ["Zg=", "Z===", "Zm9v!", "=Zm9", "Zg==Zg==", "Zm 9v"] {
            XCTAssertNil(Base64.decode(Array(bad.utf8)), bad)
        }
    }
}

extension Base64Tests {
    /// RFC 4648 §3.5: non-zero pad bits make a second spelling of the same bytes; found by the
    /// FuzzSASL target ("6//=" decoded to the bytes of "6/8=").
    func testRejectsNonZeroPadBits() {
        for bad in ["Zh==", "Zm9=", "6//=", "Zm9vYh==", "Zm9vYmF="] {
            XCTAssertNil(Base64.decode(Array(bad.utf8)), bad)
        }
        for good in ["Zg==", "Zm8=", "6/8=", "Zm9vYg==", "Zm9vYmE="] {
            let decoded = Base64.decode(Array(good.utf8))
            XCTAssertNotNil(decoded, good)
            XCTAssertEqual(decoded.map(Base64.encode), Array(good.utf8), good)
        }
    }
}

final class SecretTests: XCTestCase {
    func testNeverPrintsItsBytes() {
        let secret = Secret("hunter2 \"quoted\"")
        XCTAssertEqual("\(secret)", "<redacted>")
        XCTAssertEqual(String(describing: secret), "<redacted>")
        XCTAssertEqual(String(reflecting: secret), "<redacted>")
        XCTAssertEqual(secret.bytes, Array("hunter2 \"quoted\"".utf8))
    }
}

final class ASCIITests: XCTestCase {
    func testSanitizedReplacesControlsAndCuts() {
        XCTAssertEqual(ASCII.sanitized(Array("a\r\nb\u{0}c".utf8)), "a??b?c")
        XCTAssertEqual(ASCII.sanitized(Array("abcdef".utf8), limit: 3), "abc…")
    }

    func testParseUnsigned() {
        XCTAssertEqual(ASCII.parseUnsigned(Array("0".utf8)), 0)
        XCTAssertEqual(ASCII.parseUnsigned(Array("18446744073709551615".utf8), maxDigits: 20), UInt64.max)
        XCTAssertNil(ASCII.parseUnsigned(Array("18446744073709551616".utf8), maxDigits: 20))
        XCTAssertNil(ASCII.parseUnsigned(Array("-1".utf8)))
        XCTAssertNil(ASCII.parseUnsigned([UInt8]()))
    }
}
