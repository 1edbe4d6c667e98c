import POP3
import XCTest

/// Deterministic generator so "random" splits are reproducible (SplitMix64).
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

final class LineFramerTests: XCTestCase {
    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// Feeds `input` in the given chunk sizes, draining events after every chunk.
    private func frame(_ input: [UInt8], max: Int = 16, chunks: [Int]) -> [LineFramer.Event] {
        var framer = LineFramer(maxLineLength: max)
        var events: [LineFramer.Event] = []
        var index = 0
        var chunkIndex = 0
        while index < input.count {
            let size = Swift.max(1, chunks[chunkIndex % chunks.count])
            chunkIndex += 1
            let end = Swift.min(input.count, index + size)
            framer.append(input[index..<end])
            index = end
            while let event = framer.next() { events.append(event) }
        }
        while let event = framer.next() { events.append(event) }
        return events
    }

    private func allAtOnce(_ input: [UInt8], max: Int = 16) -> [LineFramer.Event] {
        frame(input, max: max, chunks: [Swift.max(1, input.count)])
    }

    private func byteByByte(_ input: [UInt8], max: Int = 16) -> [LineFramer.Event] {
        frame(input, max: max, chunks: [1])
    }

    private func randomSplits(_ input: [UInt8], max: Int = 16, seed: UInt64) -> [LineFramer.Event] {
        var generator = SeededGenerator(seed: seed)
        let chunks = (0..<64).map { _ in Int.random(in: 1...7, using: &generator) }
        return frame(input, max: max, chunks: chunks)
    }

    private func assertDripFeed(_ input: [UInt8], max: Int = 16, expected: [LineFramer.Event],
                                file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(allAtOnce(input, max: max), expected, "all at once", file: file, line: line)
        XCTAssertEqual(byteByByte(input, max: max), expected, "byte by byte", file: file, line: line)
        for seed: UInt64 in 1...50 {
            XCTAssertEqual(randomSplits(input, max: max, seed: seed), expected, "seed \(seed)", file: file, line: line)
        }
    }

    // MARK: - Lines

    func testCRLFAndBareLF() {
        assertDripFeed(bytes("USER a\r\nPASS b c\nQUIT\r\n"),
                       expected: [.line(bytes("USER a")), .line(bytes("PASS b c")), .line(bytes("QUIT"))])
    }

    func testOnlyTheCRBeforeLFIsStripped() {
        assertDripFeed(bytes("a\r\r\nb\rc\n\r\n\n"),
                       expected: [.line(bytes("a\r")), .line(bytes("b\rc")), .line([]), .line([])])
    }

    func testIncompleteLineNeedsMore() {
        var framer = LineFramer(maxLineLength: 16)
        framer.append(bytes("STAT\r"))
        XCTAssertNil(framer.next())
        XCTAssertEqual(framer.bufferedByteCount, 5)
        framer.append(bytes("\nNO"))
        XCTAssertEqual(framer.next(), .line(bytes("STAT")))
        XCTAssertNil(framer.next())
        XCTAssertEqual(framer.bufferedByteCount, 2)
        framer.append(bytes("OP\r\n"))
        XCTAssertEqual(framer.next(), .line(bytes("NOOP")))
        XCTAssertNil(framer.next())
        XCTAssertEqual(framer.bufferedByteCount, 0)
    }

    func testAppendAcceptsAnyCollection() {
        var framer = LineFramer(maxLineLength: 16)
        framer.append(bytes("RETR 1\r\n").lazy.map { $0 })  // not contiguous
        framer.append(ArraySlice(bytes("xxNOOP\n"))[2...])
        XCTAssertEqual(framer.next(), .line(bytes("RETR 1")))
        XCTAssertEqual(framer.next(), .line(bytes("NOOP")))
        XCTAssertNil(framer.next())
    }

    // MARK: - Limits

    func testLineOfExactlyTheLimitIsAccepted() {
        let max = 16
        let exact = [UInt8](repeating: UInt8(ascii: "a"), count: max)
        assertDripFeed(exact + bytes("\r\n") + exact + bytes("\n"), max: max, expected: [.line(exact), .line(exact)])
    }

    func testOverLongLineGivesOneTooLongThenResyncs() {
        let long = [UInt8](repeating: UInt8(ascii: "x"), count: 100)
        assertDripFeed(bytes("NOOP\r\n") + long + bytes("\r\nSTAT\r\n"), expected: [.line(bytes("NOOP")), .tooLong, .line(bytes("STAT"))])
        // One byte over, with CRLF and with bare LF; and the LF right at the limit boundary.
        let over = [UInt8](repeating: UInt8(ascii: "y"), count: 17)
        assertDripFeed(over + bytes("\r\nQUIT\r\n"), expected: [.tooLong, .line(bytes("QUIT"))])
        assertDripFeed(over + bytes("\nQUIT\n"), expected: [.tooLong, .line(bytes("QUIT"))])
        assertDripFeed(over + bytes("\r\r\nQUIT\n"), expected: [.tooLong, .line(bytes("QUIT"))])
        // Two over-long lines in a row give two events.
        assertDripFeed(long + bytes("\n") + long + bytes("\nA\n"), expected: [.tooLong, .tooLong, .line(bytes("A"))])
    }

    func testTooLongIsReportedBeforeTheLineEnds() {
        var framer = LineFramer(maxLineLength: 8)
        framer.append(bytes("NOOP\r\n") + [UInt8](repeating: 65, count: 9))
        XCTAssertEqual(framer.next(), .line(bytes("NOOP")))
        XCTAssertEqual(framer.next(), .tooLong)
        XCTAssertNil(framer.next())
        // The rest of that line is dropped as it arrives, not buffered.
        for _ in 0..<1000 {
            framer.append([UInt8](repeating: 66, count: 1000))
            XCTAssertEqual(framer.bufferedByteCount, 0)
            XCTAssertNil(framer.next())
        }
        framer.append(bytes("BBB\r\nQUIT\r\n"))
        XCTAssertEqual(framer.next(), .line(bytes("QUIT")))
        XCTAssertNil(framer.next())
    }

    func testLimitPlusCRIsUndecidedUntilTheNextByte() {
        var framer = LineFramer(maxLineLength: 4)
        framer.append(bytes("ABCD\r"))
        XCTAssertNil(framer.next())
        framer.append(bytes("\n"))
        XCTAssertEqual(framer.next(), .line(bytes("ABCD")))

        framer.append(bytes("ABCD\r"))
        XCTAssertNil(framer.next())
        framer.append(bytes("E"))
        XCTAssertEqual(framer.next(), .tooLong)
        framer.append(bytes("\nOK\n"))
        XCTAssertEqual(framer.next(), .line(bytes("OK")))

        framer.append(bytes("ABCDE"))
        XCTAssertEqual(framer.next(), .tooLong)
    }

    func testBufferStaysBoundedWhenNextIsNotCalled() {
        var framer = LineFramer(maxLineLength: 10)
        framer.append(bytes("NOOP\r\n"))
        for _ in 0..<100 { framer.append([UInt8](repeating: 0x41, count: 1000)) }
        // NOOP line (6) + the first maxLineLength + 2 bytes of the long line.
        XCTAssertEqual(framer.bufferedByteCount, 6 + 12)
        framer.append(bytes("\r\nSTAT\r\n"))
        XCTAssertEqual(framer.next(), .line(bytes("NOOP")))
        XCTAssertEqual(framer.next(), .tooLong)
        XCTAssertEqual(framer.next(), .line(bytes("STAT")))
        XCTAssertNil(framer.next())
        XCTAssertEqual(framer.bufferedByteCount, 0)
    }

    func testManyLinesInOneHugeAppendIsLinear() {
        // 200 000 lines in one append: quadratic behaviour would take minutes here.
        let input = [[UInt8]](repeating: bytes("NOOP\r\n"), count: 200_000).flatMap { $0 }
        var framer = LineFramer(maxLineLength: 512)
        framer.append(input)
        var count = 0
        var wrong = 0
        while let event = framer.next() {
            if event != .line(bytes("NOOP")) { wrong += 1 }
            count += 1
        }
        XCTAssertEqual(count, 200_000)
        XCTAssertEqual(wrong, 0)
        XCTAssertEqual(framer.bufferedByteCount, 0)
    }

    // MARK: - STLS

    func testDiscardBufferedDropsPipelinedPlaintext() {
        var framer = LineFramer(maxLineLength: 512)
        // CVE-2011-0411: a command injected after STLS in the same packet must not survive.
        framer.append(bytes("STLS\r\nUSER victim\r\nPASS x"))
        XCTAssertEqual(framer.next(), .line(bytes("STLS")))
        XCTAssertEqual(framer.bufferedByteCount, bytes("USER victim\r\nPASS x").count)
        framer.discardBuffered()
        XCTAssertEqual(framer.bufferedByteCount, 0)
        XCTAssertNil(framer.next())
        framer.append(bytes("CAPA\r\n"))
        XCTAssertEqual(framer.next(), .line(bytes("CAPA")))
        XCTAssertNil(framer.next())
    }

    func testDiscardBufferedEndsDiscardingAnOverLongLine() {
        var framer = LineFramer(maxLineLength: 4)
        framer.append(bytes("ABCDEFGH"))
        XCTAssertEqual(framer.next(), .tooLong)
        framer.discardBuffered()
        // After STLS the stream starts afresh: this is a new line, not the rest of the old one.
        framer.append(bytes("CAPA\r\n"))
        XCTAssertEqual(framer.next(), .line(bytes("CAPA")))
    }

    // MARK: - Drip-feed over a mixed stream

    /// The framer's contract written the slow, obvious way.
    private func model(_ input: [UInt8], max: Int) -> [LineFramer.Event] {
        var events: [LineFramer.Event] = []
        var parts = input.split(separator: 10, omittingEmptySubsequences: false)
        let tail = parts.removeLast()
        for part in parts {
            var line = Array(part)
            if line.last == 13 { line.removeLast() }
            events.append(line.count > max ? .tooLong : .line(line))
        }
        if tail.count > max + 1 || (tail.count == max + 1 && tail.last != 13) { events.append(.tooLong) }
        return events
    }

    func testRandomStreamsAreSplitIndependent() {
        var generator = SeededGenerator(seed: 42)
        let pieces: [[UInt8]] = [bytes("a"), bytes("bc"), bytes("\r"), bytes("\n"), bytes("\r\n"), bytes(" "),
                                 [UInt8](repeating: 0x5A, count: 9), [0]]
        for _ in 0..<200 {
            var input: [UInt8] = []
            for _ in 0..<Int.random(in: 0...40, using: &generator) {
                input += pieces[Int.random(in: 0..<pieces.count, using: &generator)]
            }
            let reference = model(input, max: 12)
            XCTAssertEqual(allAtOnce(input, max: 12), reference)
            XCTAssertEqual(byteByByte(input, max: 12), reference)
            XCTAssertEqual(randomSplits(input, max: 12, seed: generator.next()), reference)
        }
    }
}

final class LineFramerIdleMemoryTests: XCTestCase {
    func testReleaseGivesBackTheBufferOnlyWhenNothingIsBuffered() {
        var framer = LineFramer(maxLineLength: 512)
        framer.append(Array(String(repeating: "NOOP\r\n", count: 2000).utf8) + Array("STAT".utf8))
        XCTAssertGreaterThan(framer.bufferCapacity, 10_000)
        for _ in 0..<2000 { XCTAssertEqual(framer.next(), .line(Array("NOOP".utf8))) }
        XCTAssertNil(framer.next())
        framer.releaseIdleMemory()
        XCTAssertGreaterThan(framer.bufferCapacity, 0, "an unterminated line is still buffered: kept")
        framer.append(Array("\r\n".utf8))
        XCTAssertEqual(framer.next(), .line(Array("STAT".utf8)))
        framer.releaseIdleMemory()
        XCTAssertEqual(framer.bufferCapacity, 0)
        framer.append(Array("QUIT\r\n".utf8))
        XCTAssertEqual(framer.next(), .line(Array("QUIT".utf8)), "the framer works on after a release")
    }
}
