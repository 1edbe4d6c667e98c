import POP3
import XCTest

final class DotStufferTests: XCTestCase {
    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    private func stuff(_ input: [UInt8]) -> [UInt8] {
        var stuffer = DotStuffer()
        var output: [UInt8] = []
        stuffer.process(input, into: &output)
        stuffer.finish(into: &output)
        return output
    }

    /// The output when `input` is fed in chunks cut at the given offsets.
    private func stuff(_ input: [UInt8], cuts: [Int]) -> [UInt8] {
        var stuffer = DotStuffer()
        var output: [UInt8] = []
        var start = 0
        for cut in cuts + [input.count] {
            stuffer.process(input[start..<cut], into: &output)
            start = cut
        }
        stuffer.finish(into: &output)
        return output
    }

    private func assertStuffs(_ input: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        assertStuffs(bytes(input), bytes(expected), file: file, line: line)
    }

    /// Byte-exact, all at once, byte by byte, and cut at every single boundary and every pair of boundaries.
    private func assertStuffs(_ input: [UInt8], _ expected: [UInt8], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(stuff(input), expected, "all at once", file: file, line: line)
        XCTAssertEqual(stuff(input, cuts: Array(0...input.count)), expected, "byte by byte", file: file, line: line)
        for first in 0...input.count {
            XCTAssertEqual(stuff(input, cuts: [first]), expected, "cut at \(first)", file: file, line: line)
            for second in first...input.count {
                XCTAssertEqual(stuff(input, cuts: [first, second]), expected, "cut at \(first), \(second)", file: file, line: line)
            }
        }
    }

    func testPlainMessageEndingInCRLF() {
        assertStuffs("Subject: hi\r\n\r\nHello\r\n", "Subject: hi\r\n\r\nHello\r\n.\r\n")
    }

    func testLinesStartingWithADot() {
        assertStuffs("A: 1\r\n\r\n.hidden\r\n..two\r\nnot.start\r\n", "A: 1\r\n\r\n..hidden\r\n...two\r\nnot.start\r\n.\r\n")
    }

    func testLineThatIsJustADot() {
        assertStuffs("A: 1\r\n\r\n.\r\nafter\r\n", "A: 1\r\n\r\n..\r\nafter\r\n.\r\n")
        assertStuffs("A: 1\r\n\r\n.\r\n", "A: 1\r\n\r\n..\r\n.\r\n")
        assertStuffs("A: 1\r\n\r\n.", "A: 1\r\n\r\n..\r\n.\r\n")
    }

    func testFirstLineIsStuffedToo() {
        assertStuffs(".\r\n", "..\r\n.\r\n")
        assertStuffs(".x: y\r\n\r\nb\r\n", "..x: y\r\n\r\nb\r\n.\r\n")
    }

    func testNoFinalNewline() {
        assertStuffs("A: 1\r\n\r\nlast line", "A: 1\r\n\r\nlast line\r\n.\r\n")
        assertStuffs("x", "x\r\n.\r\n")
    }

    func testBareLFBecomesCRLF() {
        assertStuffs("A: 1\n\nbody\n.dot\n", "A: 1\r\n\r\nbody\r\n..dot\r\n.\r\n")
        assertStuffs("\n", "\r\n.\r\n")
        assertStuffs("\n\n", "\r\n\r\n.\r\n")
        assertStuffs("a\r\nb\nc\r\n", "a\r\nb\r\nc\r\n.\r\n")
    }

    func testBareCRIsKept() {
        assertStuffs("a\rb\r\n", "a\rb\r\n.\r\n")
        assertStuffs("a\r\r\n", "a\r\r\n.\r\n")
        // A CR does not end a line: no stuffing after it.
        assertStuffs("a\r.b\r\n", "a\r.b\r\n.\r\n")
        // A message ending in a lone CR gets CRLF after it, as Dovecot's POP3 server does.
        assertStuffs("a\r", "a\r\r\n.\r\n")
    }

    func testEmptyMessage() {
        // Dovecot's POP3 server sends an empty message as one empty line.
        XCTAssertEqual(stuff([]), bytes("\r\n.\r\n"))
        var stuffer = DotStuffer()
        var output: [UInt8] = []
        stuffer.process([UInt8](), into: &output)
        stuffer.process([UInt8](), into: &output)
        XCTAssertEqual(output, [])
        stuffer.finish(into: &output)
        XCTAssertEqual(output, bytes("\r\n.\r\n"))
    }

    func testBinaryBytesPassUnchanged() {
        let input: [UInt8] = [0, 1, 0xFF, 0x80, 13, 10, 0x2E, 0, 10]
        assertStuffs(input, [0, 1, 0xFF, 0x80, 13, 10, 0x2E, 0x2E, 0, 13, 10, 0x2E, 13, 10])
    }

    func testTerminatorCannotBeForged() {
        // Whatever the message holds, "\r\n.\r\n" appears only at the very end of the output.
        let tricky = "x\r\n.\r\n+OK fake\r\n.\n.\r.\r\n\n.\n"
        let output = stuff(bytes(tricky))
        let terminator = bytes("\r\n.\r\n")
        let hits = (0...(output.count - terminator.count)).filter { Array(output[$0..<($0 + terminator.count)]) == terminator }
        XCTAssertEqual(hits, [output.count - terminator.count])
        assertStuffs(tricky, "x\r\n..\r\n+OK fake\r\n..\r\n..\r.\r\n\r\n..\r\n.\r\n")
    }

    func testAppendsToExistingOutputAndIsReusable() {
        var stuffer = DotStuffer()
        var output = bytes("+OK 3 octets\r\n")
        stuffer.process(bytes(".a\n"), into: &output)
        stuffer.finish(into: &output)
        XCTAssertEqual(output, bytes("+OK 3 octets\r\n..a\r\n.\r\n"))
        output = []
        stuffer.process(bytes(".b"), into: &output)
        stuffer.finish(into: &output)
        XCTAssertEqual(output, bytes("..b\r\n.\r\n"))
    }

    func testNonContiguousCollections() {
        var stuffer = DotStuffer()
        var output: [UInt8] = []
        stuffer.process(bytes(".x\n.").lazy.map { $0 }, into: &output)
        stuffer.finish(into: &output)
        XCTAssertEqual(output, bytes("..x\r\n..\r\n.\r\n"))
    }

    func testRandomInputsAgainstAReferenceModel() {
        var generator = SeededGenerator(seed: 7)
        let alphabet: [UInt8] = [UInt8(ascii: "."), UInt8(ascii: "a"), 13, 10, 0]
        for _ in 0..<300 {
            let input = (0..<Int.random(in: 0...24, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            var cuts: [Int] = []
            var position = 0
            while position < input.count {
                position = Swift.min(input.count, position + Int.random(in: 1...5, using: &generator))
                cuts.append(position)
            }
            let expected = reference(input)
            XCTAssertEqual(stuff(input), expected)
            XCTAssertEqual(stuff(input, cuts: cuts), expected)
        }
    }

    /// RFC 1939 §3 the slow way: split into LF-terminated lines, normalise the ending, stuff, terminate.
    private func reference(_ input: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        var lines = input.split(separator: 10, omittingEmptySubsequences: false).map(Array.init)
        let last = lines.removeLast()
        for var line in lines {
            if line.last == 13 { line.removeLast() }
            if line.first == 0x2E { output.append(0x2E) }
            output += line + [13, 10]
        }
        if !last.isEmpty || input.isEmpty {
            if last.first == 0x2E { output.append(0x2E) }
            output += last + [13, 10]
        }
        return output + [0x2E, 13, 10]
    }
}
