import IMAP
import XCTest

/// A small deterministic generator for the random splits of the drip-feed tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum Feed {
    case whole
    case byteByByte
    case random(seed: UInt64, maxPiece: Int)
}

/// Feeds `input` in pieces, draining the parser after each one.
func parse(_ input: [UInt8], feed: Feed = .whole, options: IMAPResponseParser.Options = .init()) throws -> [IMAPResponse] {
    var parser = IMAPResponseParser(options: options)
    var events: [IMAPResponse] = []
    var pieces: [ArraySlice<UInt8>] = []
    switch feed {
    case .whole:
        pieces = [input[...]]
    case .byteByByte:
        pieces = input.indices.map { input[$0...$0] }
    case .random(let seed, let maxPiece):
        var rng = SplitMix64(seed: seed)
        var index = 0
        while index < input.count {
            let length = Int.random(in: 1...maxPiece, using: &rng)
            let end = min(index + length, input.count)
            pieces.append(input[index..<end])
            index = end
        }
    }
    for piece in pieces {
        parser.append(piece)
        while let event = try parser.next() { events.append(event) }
    }
    return events
}

func parse(_ input: String, feed: Feed = .whole, options: IMAPResponseParser.Options = .init()) throws -> [IMAPResponse] {
    try parse(Array(input.utf8), feed: feed, options: options)
}

/// Adjacent body chunks merged: how many chunks a body comes in depends on how the bytes arrived.
func coalesced(_ events: [IMAPResponse]) -> [IMAPResponse] {
    var result: [IMAPResponse] = []
    for event in events {
        if case .fetchBodyBytes(let more) = event, case .fetchBodyBytes(let bytes)? = result.last {
            result[result.count - 1] = .fetchBodyBytes(bytes + more)
        } else {
            result.append(event)
        }
    }
    return result
}

/// The error the parser throws for `input`, fed whole.
func parseError(_ input: String, options: IMAPResponseParser.Options = .init(), file: StaticString = #filePath, line: UInt = #line) -> IMAPParseError? {
    parseError(Array(input.utf8), options: options, file: file, line: line)
}

func parseError(_ input: [UInt8], options: IMAPResponseParser.Options = .init(), file: StaticString = #filePath, line: UInt = #line) -> IMAPParseError? {
    do {
        _ = try parse(input, options: options)
        XCTFail("no error", file: file, line: line)
        return nil
    } catch let error as IMAPParseError {
        return error
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
        return nil
    }
}

func isMalformed(_ error: IMAPParseError?) -> Bool {
    if case .malformed? = error { return true }
    return false
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
