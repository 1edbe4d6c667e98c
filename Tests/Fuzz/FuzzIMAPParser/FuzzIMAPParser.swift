import FuzzSupport
import IMAP

// The IMAP response parser (Sources/IMAP/ResponseParser*.swift): `append`, then `next()` until nil.
//
// Input: [mode] [k] [k chunk lengths] [stream…]
//   mode bit 0: small limits (maxLineLength 64, maxLiteralSize 100, maxBodyChunk 7) instead of the defaults
//   mode bit 1: literal injection: in the stream, a NUL byte followed by a selector byte becomes a literal
//               header `{N}`, `{N+}` or `~{N}` + CRLF with N at a numeric edge (0, 2^31, 2^32, 2^63-1,
//               2^64-1, 20+ digits, the literal limit ± 1, …)
//   k: k % 16 chunk-length bytes follow
//
// Checks: `next()` returns or throws, never traps; the stream gives the same responses (adjacent body
// chunks merged) and the same first error (its kind; the text quotes the buffer and may differ) whether
// it is fed all at once, in the fuzzer's chunks, or byte by byte; body chunks are non-empty and within
// maxBodyChunk, and a body yields exactly the `size` bytes `fetchBodyBegin` announced.

/// Literal sizes at the edges of the integer types and of the parser's limits.
let literalEdges: [String] = [
    "0", "1", "7", "100", "101", "65536", "1048576", "1048577",
    "2147483647", "2147483648", "4294967295", "4294967296",
    "9223372036854775807", "9223372036854775808", "18446744073709551615", "18446744073709551616",
    "99999999999999999999", "000000000000000000001", "123456789012345678901234567890", "",
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIMAPParser(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte()
    let lengths = input.take(Int(input.byte() % 16))
    var stream = input.rest()
    if mode & 2 != 0 { stream = injectLiterals(stream) }

    var options = IMAPResponseParser.Options()
    if mode & 1 != 0 {
        options.maxLineLength = 64
        options.maxLiteralSize = 100
        options.maxBodyChunk = 7
    }

    let whole = run(stream, chunks: [stream], options: options)
    let split = run(stream, chunks: chunks(of: stream, lengths: lengths), options: options)
    let drip = run(stream, chunks: stream.map { [$0] }, options: options)
    check(split == whole, "split feeding differs:\n  whole: \(whole)\n  split: \(split)", context: stream)
    check(drip == whole, "byte-by-byte feeding differs:\n  whole: \(whole)\n  drip:  \(drip)", context: stream)
    return 0
}

/// What a feeding produced: the responses (adjacent body chunks merged) and how it ended.
struct Outcome: Equatable, CustomStringConvertible {
    enum End: Equatable { case needMore, lineTooLong, literalTooLarge, malformed }
    var responses: [IMAPResponse] = []
    var end = End.needMore

    var description: String {
        let shown = responses.suffix(6).map { "\($0)" }.joined(separator: ", ")
        return "\(responses.count) responses [… \(shown)] then \(end)"
    }
}

func run(_ stream: [UInt8], chunks: [[UInt8]], options: IMAPResponseParser.Options) -> Outcome {
    var parser = IMAPResponseParser(options: options)
    var outcome = Outcome()
    var bodyRemaining: Int? = nil  // bytes still owed by a literal or quoted body
    for chunk in chunks {
        parser.append(chunk)
        while true {
            let response: IMAPResponse?
            do {
                response = try parser.next()
            } catch {
                switch error {
                case .lineTooLong: outcome.end = .lineTooLong
                case .literalTooLarge: outcome.end = .literalTooLarge
                case .malformed: outcome.end = .malformed
                }
                // After an error the parser stays failed.
                do {
                    _ = try parser.next()
                    check(false, "next() after an error did not throw", context: stream)
                } catch let again {
                    check(again == error, "next() after an error threw something else", context: stream)
                }
                return outcome
            }
            guard let response else { break }
            switch response {
            case .fetchBodyBegin(_, _, let size):
                check(bodyRemaining == nil, "fetchBodyBegin inside a body", context: stream)
                if let size { check(size >= 0, "negative body size", context: stream) }
                bodyRemaining = size ?? 0
            case .fetchBodyBytes(let bytes):
                check(!bytes.isEmpty, "empty fetchBodyBytes", context: stream)
                check(bytes.count <= Swift.max(options.maxBodyChunk, 1), "body chunk of \(bytes.count) bytes", context: stream)
                check(bytes.count <= bodyRemaining ?? -1, "more body bytes than announced", context: stream)
                bodyRemaining! -= bytes.count
            case .fetchBodyEnd:
                check(bodyRemaining == 0, "fetchBodyEnd with \(bodyRemaining.map(String.init) ?? "no body") bytes owed", context: stream)
                bodyRemaining = nil
            default:
                check(bodyRemaining == nil, "\(response) inside a body", context: stream)
            }
            if case .fetchBodyBytes(let bytes) = response, case .fetchBodyBytes(let previous)? = outcome.responses.last {
                outcome.responses[outcome.responses.count - 1] = .fetchBodyBytes(previous + bytes)
            } else {
                outcome.responses.append(response)
            }
        }
    }
    return outcome
}

/// NUL + selector → a literal header at a numeric edge.
func injectLiterals(_ stream: [UInt8]) -> [UInt8] {
    var output: [UInt8] = []
    var index = 0
    while index < stream.count {
        let byte = stream[index]
        index += 1
        guard byte == 0, index < stream.count else {
            output.append(byte)
            continue
        }
        let selector = Int(stream[index])
        index += 1
        let digits = literalEdges[selector % literalEdges.count]
        let form = selector / literalEdges.count % 3
        if form == 2 { output.append(UInt8(ascii: "~")) }
        output += Array("{\(digits)\(form == 1 ? "+" : "")}\r\n".utf8)
    }
    return output
}
