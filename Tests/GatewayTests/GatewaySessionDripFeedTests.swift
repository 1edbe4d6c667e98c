import Gateway
import XCTest

/// The machine composes two incremental parsers: what the client receives must not depend on how the
/// client's and the backend's bytes were split into reads.
final class GatewaySessionDripFeedTests: XCTestCase {
    static let clientScript = "USER alice\r\nPASS secret\r\nSTAT\r\nLIST\r\nRETR 1\r\nTOP 2 1\r\nDELE 1\r\nUIDL\r\nQUIT\r\n"

    static let backendScript: [String] = [
        SessionTranscript.greeting,
        "P1 " + SessionTranscript.loggedIn,
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n* 2 EXISTS\r\n* OK [UIDVALIDITY 42] UIDs valid\r\nP2 OK [READ-WRITE] Select completed.\r\n",
        "* 1 FETCH (UID 7 RFC822.SIZE 18 FLAGS (\\Seen))\r\n* 2 FETCH (UID 9 RFC822.SIZE 21 FLAGS ())\r\nP3 OK Fetch completed.\r\n",
        "* 1 FETCH (UID 7 BODY[] {18}\r\nA: b\r\n\r\n.x\r\nlast\r\n)\r\nP4 OK Fetch completed.\r\n",
        "* 2 FETCH (UID 9 BODY[] {21}\r\nC: d\r\n\r\none\r\ntwo\r\n.\r\n)\r\nP5 OK Fetch completed.\r\n",
        "P6 OK Store completed.\r\n",
        "P7 OK Store completed.\r\n",
    ]

    /// Runs the script: each backend answer is fed in pieces of `split` bytes once the machine has
    /// sent the command it answers (or, for the greeting, once it asked to connect).
    func run(clientSplit: Int, backendSplit: Int) -> String {
        var t = SessionTranscript()
        let client = Array(Self.clientScript.utf8)
        for start in stride(from: 0, to: client.count, by: clientSplit) {
            t.send(.clientDataReceived(Array(client[start..<min(start + clientSplit, client.count)])))
        }
        t.send(.backendConnected(encrypted: true))
        for answer in Self.backendScript {
            let bytes = Array(answer.utf8)
            for start in stride(from: 0, to: bytes.count, by: backendSplit) {
                t.send(.backendDataReceived(Array(bytes[start..<min(start + backendSplit, bytes.count)])))
            }
        }
        return t.takeClient()
    }

    func testEverySplitGivesTheSameTranscript() {
        let whole = run(clientSplit: 10_000, backendSplit: 10_000)
        XCTAssertEqual(whole, """
            +OK PopGate POP3 gateway ready.\r
            +OK Send your password.\r
            +OK Logged in.\r
            +OK 2 39\r
            +OK 2 messages:\r
            1 18\r
            2 21\r
            .\r
            +OK 18 octets\r
            A: b\r
            \r
            ..x\r
            last\r
            .\r
            +OK\r
            C: d\r
            \r
            one\r
            .\r
            +OK Marked to be deleted.\r
            +OK\r
            2 000000090000002a\r
            .\r
            +OK Logging out.\r

            """)
        for clientSplit in [1, 2, 3, 7] {
            for backendSplit in [1, 2, 5, 13, 64] {
                XCTAssertEqual(run(clientSplit: clientSplit, backendSplit: backendSplit), whole, "client \(clientSplit), backend \(backendSplit)")
            }
        }
    }
}
