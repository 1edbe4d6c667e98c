import Gateway
import XCTest

/// The daemon survives every client and every backend: random bytes from either side must never trap
/// the machine, and whatever it answers the client is a well-formed POP3 status line.
final class GatewaySessionGarbageTests: XCTestCase {
    /// xorshift64*: seeded, so a failure can be replayed.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            return state &* 2_685_821_657_736_338_717
        }
    }

    /// Bytes biased towards what parsers branch on.
    static func garbage(_ rng: inout SeededGenerator, count: Int) -> [UInt8] {
        let interesting: [UInt8] = Array("\r\n .*{}()[]+\\\"0123456789 RETRTOPUSERPASSAUTHFETCHBODY OK NO BAD BYE".utf8) + [0, 255, 128]
        return (0..<count).map { _ in
            Bool.random(using: &rng) ? interesting.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
        }
    }

    func testRandomClientBytesGetOnlyStatusLines() {
        for seed in 1...200 as ClosedRange<UInt64> {
            var rng = SeededGenerator(state: seed &* 0x9E37_79B9_7F4A_7C15)
            var t = SessionTranscript(listener: ListenerContext(tlsActive: true, startTLSAvailable: false, plaintextAuthAllowed: false))
            _ = t.takeClient()
            for _ in 0..<20 {
                t.send(.clientDataReceived(Self.garbage(&rng, count: Int.random(in: 1...80, using: &rng))))
            }
            // Nothing here can have logged in: every answer is a status line or a multi-line CAPA/AUTH list.
            let output = t.takeClient()
            XCTAssertTrue(t.backendOutput.isEmpty, "seed \(seed): no backend was ever connected")
            for line in output.split(separator: "\r\n", omittingEmptySubsequences: true) {
                XCTAssertTrue(line.hasPrefix("+OK") || line.hasPrefix("-ERR") || line.hasPrefix("+ ") || line == "." || line.allSatisfy { $0.isLetter || $0.isNumber || $0 == " " || $0 == "-" || $0 == ":" }, "seed \(seed): \(line)")
            }
        }
    }

    func testRandomBackendBytesEndInAnErrorNotATrap() {
        for seed in 1...200 as ClosedRange<UInt64> {
            var rng = SeededGenerator(state: seed &* 0xD1B5_4A32_D192_ED03)
            var t = SessionTranscript()
            t.logIn(messages: [(1, 30, ""), (2, 40, "")])
            t.client("RETR 1\r\nTOP 2 1\r\nDELE 1\r\nQUIT\r\n")
            for _ in 0..<20 {
                t.send(.backendDataReceived(Self.garbage(&rng, count: Int.random(in: 1...120, using: &rng))))
                if t.ended != nil { break }
            }
            t.send(.backendClosed(reason: nil))
            XCTAssertNotNil(t.ended, "seed \(seed): a closed backend ends the session")
            if let summary = t.ended, summary.ending != .quit {
                // Nothing half-applied is reported as done.
                XCTAssertFalse(t.takeClient().contains("+OK Logging out."), "seed \(seed)")
            }
        }
    }
}
