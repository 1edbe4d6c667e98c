import POP3
import XCTest

/// The expected outputs are what Dovecot 2.3.19.1's POP3 server sends for TOP on the same maildir
/// message (checked with `/usr/lib/dovecot/pop3`, and in a differential run over 1 100 random
/// messages × m ∈ {0, 1, 2, 3, 5, 10⁶} × three chunkings), minus the "+OK" line.
final class TopFilterTests: XCTestCase {
    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    private func filter(_ input: [UInt8], lines: Int, cuts: [Int] = []) -> (output: [UInt8], complete: Bool) {
        var top = TopFilter(bodyLines: lines)
        var output: [UInt8] = []
        var start = 0
        for cut in cuts + [input.count] {
            top.process(input[start..<cut], into: &output)
            start = cut
        }
        return (output, top.isComplete)
    }

    /// TOP output as the client sees it: filtered, then dot-stuffed.
    private func top(_ input: [UInt8], lines: Int, cuts: [Int] = []) -> [UInt8] {
        var stuffer = DotStuffer()
        var output: [UInt8] = []
        stuffer.process(filter(input, lines: lines, cuts: cuts).output, into: &output)
        stuffer.finish(into: &output)
        return output
    }

    private func assertTop(_ message: String, lines: Int, _ expected: String, complete: Bool,
                           file: StaticString = #filePath, line: UInt = #line) {
        let input = bytes(message)
        XCTAssertEqual(top(input, lines: lines), bytes(expected), "all at once", file: file, line: line)
        XCTAssertEqual(filter(input, lines: lines).complete, complete, "isComplete", file: file, line: line)
        XCTAssertEqual(top(input, lines: lines, cuts: Array(0...input.count)), bytes(expected), "byte by byte", file: file, line: line)
        for first in 0...input.count {
            for second in first...input.count {
                let result = filter(input, lines: lines, cuts: [first, second])
                XCTAssertEqual(result.complete, complete, "cut at \(first), \(second)", file: file, line: line)
                XCTAssertEqual(top(input, lines: lines, cuts: [first, second]), bytes(expected),
                               "cut at \(first), \(second)", file: file, line: line)
            }
        }
    }

    func testHeaderAndFirstBodyLines() {
        let message = "A: 1\r\nB: 2\r\n\r\nline 1\r\nline 2\r\n"
        assertTop(message, lines: 0, "A: 1\r\nB: 2\r\n\r\n.\r\n", complete: true)
        assertTop(message, lines: 1, "A: 1\r\nB: 2\r\n\r\nline 1\r\n.\r\n", complete: true)
        assertTop(message, lines: 2, "A: 1\r\nB: 2\r\n\r\nline 1\r\nline 2\r\n.\r\n", complete: true)
    }

    func testMoreLinesThanTheBodyHas() {
        let message = "A: 1\r\nB: 2\r\n\r\nline 1\r\nline 2\r\n"
        assertTop(message, lines: 3, "A: 1\r\nB: 2\r\n\r\nline 1\r\nline 2\r\n.\r\n", complete: false)
        assertTop(message, lines: 1_000_000, "A: 1\r\nB: 2\r\n\r\nline 1\r\nline 2\r\n.\r\n", complete: false)
        assertTop(message, lines: Int.max, "A: 1\r\nB: 2\r\n\r\nline 1\r\nline 2\r\n.\r\n", complete: false)
    }

    func testNoBlankLineMeansAllHeader() {
        assertTop("A: 1\r\nB: 2\r\n", lines: 0, "A: 1\r\nB: 2\r\n.\r\n", complete: false)
        assertTop("A: 1\r\nB: 2", lines: 0, "A: 1\r\nB: 2\r\n.\r\n", complete: false)
        assertTop("A: 1", lines: 5, "A: 1\r\n.\r\n", complete: false)
    }

    func testLastBodyLineWithoutCRLF() {
        assertTop("A: 1\r\n\r\nbody", lines: 0, "A: 1\r\n\r\n.\r\n", complete: true)
        assertTop("A: 1\r\n\r\nbody", lines: 1, "A: 1\r\n\r\nbody\r\n.\r\n", complete: false)
        assertTop("A: 1\r\n\r\nl1\r\nlast", lines: 1, "A: 1\r\n\r\nl1\r\n.\r\n", complete: true)
        assertTop("A: 1\r\n\r\nl1\r\nlast", lines: 2, "A: 1\r\n\r\nl1\r\nlast\r\n.\r\n", complete: false)
        // Ends in a lone CR: Dovecot sends it and then CRLF.
        assertTop("A: 1\r\n\r\nlast\r", lines: 3, "A: 1\r\n\r\nlast\r\r\n.\r\n", complete: false)
    }

    func testBareLF() {
        let message = "A: 1\nB: 2\n\nl1\nl2\n"
        assertTop(message, lines: 0, "A: 1\r\nB: 2\r\n\r\n.\r\n", complete: true)
        assertTop(message, lines: 1, "A: 1\r\nB: 2\r\n\r\nl1\r\n.\r\n", complete: true)
        assertTop(message, lines: 5, "A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n.\r\n", complete: false)
        // Mixed: CRLF header, bare-LF blank line.
        assertTop("A: 1\r\n\nb1\r\nb2\r\n", lines: 1, "A: 1\r\n\r\nb1\r\n.\r\n", complete: true)
    }

    func testEmptyHeader() {
        assertTop("\r\nbody\r\n", lines: 0, "\r\n.\r\n", complete: true)
        assertTop("\r\nbody\r\n", lines: 1, "\r\nbody\r\n.\r\n", complete: true)
        assertTop("\nbody\n", lines: 0, "\r\n.\r\n", complete: true)
    }

    func testEmptyMessage() {
        assertTop("", lines: 0, "\r\n.\r\n", complete: false)
        assertTop("", lines: 10, "\r\n.\r\n", complete: false)
    }

    func testALineStartingWithCREndsTheHeader() {
        // Dovecot takes any line starting with CR as the end of the header, and counts it as line 0.
        let message = "A: 1\r\n\rX: 2\r\nb\r\n"
        assertTop(message, lines: 0, "A: 1\r\n\rX: 2\r\n.\r\n", complete: true)
        assertTop(message, lines: 1, "A: 1\r\n\rX: 2\r\nb\r\n.\r\n", complete: true)
        // A CR in mid-line does not.
        assertTop("A\r\rB\r\n\r\nx", lines: 0, "A\r\rB\r\n\r\n.\r\n", complete: true)
    }

    func testEmptyBodyLinesCount() {
        let message = "A: 1\r\n\r\n\r\n\r\nx\r\n"
        assertTop(message, lines: 0, "A: 1\r\n\r\n.\r\n", complete: true)
        assertTop(message, lines: 1, "A: 1\r\n\r\n\r\n.\r\n", complete: true)
        assertTop(message, lines: 2, "A: 1\r\n\r\n\r\n\r\n.\r\n", complete: true)
        assertTop(message, lines: 3, "A: 1\r\n\r\n\r\n\r\nx\r\n.\r\n", complete: true)
    }

    func testDotsAreStuffedAfterFiltering() {
        let message = "A: 1\r\n\r\n.\r\n..\r\n.x\r\n"
        assertTop(message, lines: 1, "A: 1\r\n\r\n..\r\n.\r\n", complete: true)
        assertTop(message, lines: 3, "A: 1\r\n\r\n..\r\n...\r\n..x\r\n.\r\n", complete: true)
    }

    func testRawOutputAndLaterChunksAreDropped() {
        var top = TopFilter(bodyLines: 1)
        var output: [UInt8] = []
        top.process(bytes("Subject: s\r\n\r\nfirst\r\nsec"), into: &output)
        XCTAssertTrue(top.isComplete)
        XCTAssertEqual(output, bytes("Subject: s\r\n\r\nfirst\r\n"))
        top.process(bytes("ond\r\n\r\n"), into: &output)
        XCTAssertEqual(output, bytes("Subject: s\r\n\r\nfirst\r\n"))
    }

    func testIsCompleteOnlyAfterTheLastNeededLF() {
        var top = TopFilter(bodyLines: 0)
        var output: [UInt8] = []
        top.process(bytes("A: 1\r\n\r"), into: &output)
        XCTAssertFalse(top.isComplete)
        top.process(bytes("\n"), into: &output)
        XCTAssertTrue(top.isComplete)
        XCTAssertEqual(output, bytes("A: 1\r\n\r\n"))
    }

    func testNegativeLineCountActsAsZero() {
        XCTAssertEqual(filter(bytes("A\r\n\r\nb\r\n"), lines: -3).output, bytes("A\r\n\r\n"))
    }

    func testNonContiguousCollections() {
        var top = TopFilter(bodyLines: 0)
        var output: [UInt8] = []
        top.process(bytes("A\n\nb\n").lazy.map { $0 }, into: &output)
        XCTAssertEqual(output, bytes("A\n\n"))
        XCTAssertTrue(top.isComplete)
    }
}
