import FuzzSupport
import POP3

// DotStuffer and TopFilter (Sources/POP3), fed in fuzzer-chosen chunks.
//
// Input: [m] [k] [k chunk lengths] [message…]
//   m: TOP line count (255 → Int.max, 254 → -1, else m % 16)
//   k: k % 16 chunk-length bytes follow (0 → the message in one piece)
//
// Checks, for any split:
// - DotStuffer: the output is CRLF lines; every line starting with "." is either dot-stuffed ("..")
//   or the terminating "." line, which comes last. De-stuffed (drop the first "." of ".." lines, stop
//   at ".\r\n"), it equals the CRLF-normalised message plus the CRLF `finish` adds when the message
//   does not end with one (an empty message included).
// - The stuffer is reusable after `finish`: a second message through the same stuffer checks the same.
// - TopFilter: its output is a prefix of the message, the same as a whole-message reference of
//   RFC 1939 §7 TOP (header up to the first line starting with CR or LF, that line, then m lines,
//   lines ending at LF), whatever the split; `isComplete` says whether it cut the message.
// - TopFilter → DotStuffer (what TOP sends): de-stuffs to the normalised filtered bytes.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDotStuffer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mByte = input.byte()
    let bodyLines = mByte == 255 ? Int.max : (mByte == 254 ? -1 : Int(mByte % 16))
    let lengths = input.take(Int(input.byte() % 16))
    let message = input.rest()

    // Stuffing, two messages through one stuffer (the second is the message reversed).
    var stuffer = DotStuffer()
    checkStuffing(&stuffer, message, lengths: lengths)
    checkStuffing(&stuffer, message.reversed(), lengths: lengths.reversed())

    // TOP.
    var filter = TopFilter(bodyLines: bodyLines)
    var filtered: [UInt8] = []
    for chunk in chunks(of: message, lengths: lengths) {
        filter.process(chunk, into: &filtered)
    }
    let (expectedLength, expectedComplete) = referenceTop(message, bodyLines: bodyLines)
    check(filtered.elementsEqual(message.prefix(expectedLength)),
          "TopFilter(\(bodyLines)) passed \(filtered.count) bytes, reference \(expectedLength)", context: message)
    check(filter.isComplete == expectedComplete,
          "TopFilter(\(bodyLines)).isComplete = \(filter.isComplete), reference \(expectedComplete)", context: message)
    var topStuffer = DotStuffer()
    checkStuffing(&topStuffer, filtered, lengths: lengths)
    return 0
}

/// Stuffs `message` in chunks, finishes, and checks the output against the message.
func checkStuffing(_ stuffer: inout DotStuffer, _ message: [UInt8], lengths: [UInt8]) {
    var output: [UInt8] = []
    for chunk in chunks(of: message, lengths: lengths) {
        let before = output.count
        stuffer.process(chunk, into: &output)
        // Nothing is held back: a chunk's output is at least the chunk.
        check(output.count - before >= chunk.count, "DotStuffer held bytes back", context: chunk)
    }
    stuffer.finish(into: &output)

    var expected = normalizedCRLF(message)
    if expected.isEmpty || !expected.hasSuffix([13, 10]) { expected += [13, 10] }
    let destuffed = destuff(output, message: message)
    check(destuffed == expected, "de-stuffed output differs from the normalised message: got \(printable(destuffed))",
          context: message)
}

/// Undoes RFC 1939 §3 byte-stuffing; checks the shape on the way (CRLF lines, no unstuffed "." line,
/// the terminator last).
func destuff(_ output: [UInt8], message: [UInt8]) -> [UInt8] {
    var result: [UInt8] = []
    var start = 0
    var terminated = false
    while start < output.count {
        check(!terminated, "bytes after the terminating \".\" line", context: message)
        var end = start
        while end + 1 < output.count && !(output[end] == 13 && output[end + 1] == 10) { end += 1 }
        check(end + 1 < output.count, "output does not end with CRLF: \(printable(output))", context: message)
        let line = output[start..<end]
        if line.elementsEqual([46]) {
            terminated = true
        } else if line.first == 46 {
            check(line.count >= 2 && line[line.startIndex + 1] == 46,
                  "line starting with \".\" not stuffed: \(printable(line))", context: message)
            result += line.dropFirst()
            result += [13, 10]
        } else {
            result += line
            result += [13, 10]
        }
        start = end + 2
    }
    check(terminated, "no terminating \".\" line: \(printable(output))", context: message)
    return result
}

/// TOP m on the whole message, written plainly: how many leading bytes pass, and whether the filter
/// stopped before the end of what it was given.
func referenceTop(_ message: [UInt8], bodyLines: Int) -> (Int, Bool) {
    let wanted = bodyLines == Int.max ? Int.max : Swift.max(0, bodyLines) + 1  // + the blank line
    var inBody = false
    var counted = 0
    var lineStart = 0
    for (index, byte) in message.enumerated() {
        if index == lineStart && !inBody && (byte == 13 || byte == 10) { inBody = true }
        if byte == 10 {
            lineStart = index + 1
            if inBody {
                counted += 1
                if counted == wanted { return (index + 1, true) }
            }
        }
    }
    return (message.count, false)
}
