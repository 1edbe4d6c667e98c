import Wire

/// TOP n m (RFC 1939 §7): passes the header, the blank line after it and the first m body lines of
/// the raw message, and drops the rest. Feed its output to a `DotStuffer`.
///
/// ```
/// C: TOP 1 1
/// message: "A: 1\r\nB: 2\r\n\r\nline 1\r\nline 2\r\n"
/// passed:  "A: 1\r\nB: 2\r\n\r\nline 1\r\n"
/// ```
///
/// Byte for byte what Dovecot's POP3 server sends (`src/pop3/pop3-commands.c`, `fetch_callback`):
/// - the header ends at the first line that *starts* with CR or LF (so "\r\n", "\n", but also a line
///   like "\rX"); that line is passed and counted as line 0 of the body;
/// - only LF ends a line; the filter stops right after the LF ending body line m (so m = 0 passes
///   the header and the blank line);
/// - a message without such a line is all header and passes whole, as does a body shorter than m
///   lines; a missing final CRLF is the `DotStuffer`'s business, as in Dovecot.
/// One Dovecot quirk is not copied: after a NUL byte that happens to end one of its read chunks,
/// Dovecot takes a CR or LF at the start of the next chunk as a line start — chunking-dependent
/// behaviour no client can rely on.
public struct TopFilter: Sendable {
    /// Body lines still to pass, counting the blank line that ends the header.
    private var remaining: Int
    private var inBody = false
    private var atLineStart = true

    /// true once header + m body lines have been passed: later bytes are not needed.
    public private(set) var isComplete = false

    /// `bodyLines` below 0 is treated as 0.
    public init(bodyLines: Int) {
        let lines = Swift.max(0, bodyLines)
        remaining = lines == Int.max ? Int.max : lines + 1
    }

    /// Appends the part of `chunk` that belongs to the TOP output to `output`.
    public mutating func process<C: Collection>(_ chunk: C, into output: inout [UInt8]) where C.Element == UInt8 {
        guard !isComplete else { return }
        let handled: Void? = chunk.withContiguousStorageIfAvailable { process($0, into: &output) }
        if handled == nil {
            Array(chunk).withUnsafeBufferPointer { process($0, into: &output) }
        }
    }

    private mutating func process(_ input: UnsafeBufferPointer<UInt8>, into output: inout [UInt8]) {
        var end = input.count
        for index in 0..<input.count {
            let byte = input[index]
            if !inBody && atLineStart && (byte == ASCII.cr || byte == ASCII.lf) {
                inBody = true
            }
            if byte == ASCII.lf {
                atLineStart = true
                if inBody {
                    remaining -= 1
                    if remaining == 0 {
                        isComplete = true
                        end = index + 1
                        break
                    }
                }
            } else {
                atLineStart = false
            }
        }
        output.append(contentsOf: UnsafeBufferPointer(rebasing: input[0..<end]))
    }
}
