import FuzzSupport
import POP3
import Wire

// SASL PLAIN (Sources/POP3/SASLPlain.swift) and Base64 (Sources/Wire/Base64.swift).
//
// Input: [mode] [payload…]
//   mode even: the payload is the base64 text a client sends (mostly rejected by the decoder);
//   mode odd:  the payload is the SASL message, and its base64 is what gets decoded (so the
//              NUL/UTF-8 rules of PLAIN are what is exercised).
//
// Checks: nothing traps; where `Base64.decode` succeeds, encoding the result gives the input back
// (the decoder is strict: exactly one text per byte string); `Base64.decode(Base64.encode(x)) == x`;
// where `SASLPlain.decode` succeeds, `encodedBase64()` gives the input back and decodes to the same
// value, and the parts follow RFC 4616 (non-empty authcid, no NUL in any part).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSASL(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte()
    let payload = input.rest()

    // Encoding always round-trips.
    let encoded = Base64.encode(payload)
    check(encoded.count == (payload.count + 2) / 3 * 4, "Base64.encode length \(encoded.count)", context: payload)
    check(Base64.decode(encoded) == payload, "Base64.decode(encode(x)) != x", context: payload)

    let text = mode % 2 == 0 ? payload : encoded
    if let decoded = Base64.decode(text) {
        check(Base64.encode(decoded) == text, "Base64.encode(decode(x)) = \(printable(Base64.encode(decoded))) != x", context: text)
    }

    guard let plain = SASLPlain.decode(base64: text) else { return 0 }
    check(!plain.authenticationIdentity.isEmpty, "empty authcid accepted", context: text)
    check(!plain.authorizationIdentity.utf8.contains(0) && !plain.authenticationIdentity.utf8.contains(0)
          && !plain.password.bytes.contains(0), "NUL inside a SASL PLAIN part", context: text)
    let again = plain.encodedBase64()
    check(again.bytes == text, "SASLPlain encodedBase64() = \(printable(again.bytes)) != input", context: text)
    check(SASLPlain.decode(base64: again.bytes) == plain, "SASLPlain does not decode its own encoding", context: text)
    // The one place the secret may appear is the bytes: descriptions stay redacted.
    check("\(plain.password)" == "<redacted>" && "\(again)" == "<redacted>", "Secret printed its bytes")
    return 0
}
