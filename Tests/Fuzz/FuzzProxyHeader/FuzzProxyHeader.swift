import FuzzSupport
import ProxyProtocol
import Wire

// The PROXY protocol header parser (Sources/ProxyProtocol/ProxyHeaderParser.swift).
//
// Input: [n] [n split lengths] [bytes…]: the bytes a proxy (or anyone) sends first, cut where the fuzzer says.
//
// Checks: nothing traps; the outcome is the same fed whole, in the fuzzer's chunks and byte by byte (a header
// split across many reads); the parser never holds more than the longest header (536 bytes); a header's
// length plus `rest` is exactly the input, and `rest` is the input's tail (no byte after the header is lost
// or invented); a v1 header is at most 107 bytes and ends in CRLF; a v2 header is 16 + its length field, and
// its endpoints are the bytes after the fixed part; header addresses print as text that parses back.

private func run(_ pieces: [[UInt8]]) -> (step: ProxyHeaderParser.Step, maxBuffered: Int) {
    var parser = ProxyHeaderParser()
    var step = ProxyHeaderParser.Step.needMore
    var rest: [UInt8] = []
    var maxBuffered = 0
    for piece in pieces {
        switch step {
        case .needMore:
            step = parser.parse(piece)
            maxBuffered = max(maxBuffered, parser.bufferedCount)
        case .header:
            rest += piece
        case .failed:
            break
        }
    }
    if case .header(let header, let first) = step { step = .header(header, rest: first + rest) }
    return (step, maxBuffered)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProxyHeader(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let lengths = input.take(Int(input.byte() % 8))
    let bytes = input.rest()

    let whole = run([bytes]).step
    let chunked = run(chunks(of: bytes, lengths: lengths))
    let bytewise = run(bytes.map { [$0] })
    check(whole == chunked.step && whole == bytewise.step, "the split changes the outcome: \(whole) / \(chunked.step) / \(bytewise.step)", context: bytes)
    let longest = 16 + ProxyHeaderParser.maxV2PayloadLength
    check(chunked.maxBuffered <= longest && bytewise.maxBuffered <= longest, "buffered \(chunked.maxBuffered)/\(bytewise.maxBuffered) bytes", context: bytes)

    guard case .header(let header, let rest) = whole else { return 0 }
    check(header.length + rest.count == bytes.count, "header \(header.length) + rest \(rest.count) != \(bytes.count)", context: bytes)
    check(rest.elementsEqual(bytes.suffix(rest.count)), "rest is not the input's tail", context: bytes)
    if let endpoints = header.endpoints {
        check(IPAddress(endpoints.source.description) == endpoints.source
              && IPAddress(endpoints.destination.description) == endpoints.destination, "address text does not round-trip", context: bytes)
    }
    switch header.version {
    case .v1:
        check(header.length <= ProxyHeaderParser.maxV1Length, "v1 header of \(header.length) bytes", context: bytes)
        check(bytes[header.length - 2] == 13 && bytes[header.length - 1] == 10, "v1 header not ending in CRLF", context: bytes)
    case .v2:
        check(header.length == 16 + (Int(bytes[14]) << 8 | Int(bytes[15])), "v2 length is not 16 + the length field", context: bytes)
        check(header.length <= longest, "v2 header of \(header.length) bytes", context: bytes)
        if let endpoints = header.endpoints {
            let size = endpoints.source.family == .v4 ? 4 : 16
            let expected = endpoints.source.bytes + endpoints.destination.bytes
                + [UInt8(endpoints.sourcePort >> 8), UInt8(endpoints.sourcePort & 0xFF),
                   UInt8(endpoints.destinationPort >> 8), UInt8(endpoints.destinationPort & 0xFF)]
            check(Array(bytes[16..<(16 + 2 * size + 4)]) == expected, "v2 endpoints are not the address block", context: bytes)
        }
    }
    return 0
}
