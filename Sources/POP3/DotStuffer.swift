import Wire

/// Streaming RFC 1939 §3 byte-stuffing of a message for RETR and TOP.
///
/// ```
/// message bytes:  "Subject: x\r\n\r\n.hidden\nlast"
/// S: Subject: x\r\n\r\n..hidden\r\nlast\r\n.\r\n
/// ```
///
/// - a line starting with "." gets one more "." (the first line of the message too);
/// - a bare LF becomes CRLF; CR LF is kept, and so is a CR not followed by LF;
/// - `finish` adds CRLF unless the message ended with one, then the terminating ".\r\n".
///   Like Dovecot's POP3 server, an empty message thus becomes "\r\n.\r\n", and a message
///   ending in a lone CR gets CRLF after it.
///
/// Resumable at every byte boundary: only where the last byte left the line is remembered,
/// nothing is held back, so output for a chunk is final.
public struct DotStuffer: Sendable {
    private enum Position: Sendable {
        /// Nothing processed yet: a line start, but the message does not end with CRLF.
        case messageStart
        case lineStart
        case midLine
        /// The last byte was a CR: an LF now is the second half of a CRLF.
        case afterCR
    }

    private var position = Position.messageStart

    public init() {}

    public mutating func process<C: Collection>(_ chunk: C, into output: inout [UInt8]) where C.Element == UInt8 {
        let handled: Void? = chunk.withContiguousStorageIfAvailable { process($0, into: &output) }
        if handled == nil {
            Array(chunk).withUnsafeBufferPointer { process($0, into: &output) }
        }
    }

    private mutating func process(_ input: UnsafeBufferPointer<UInt8>, into output: inout [UInt8]) {
        // Bytes are copied in runs; a run is cut only where something must be inserted before a byte.
        var runStart = 0
        for index in 0..<input.count {
            switch input[index] {
            case ASCII.lf:
                if position != .afterCR {
                    output.append(contentsOf: UnsafeBufferPointer(rebasing: input[runStart..<index]))
                    output.append(ASCII.cr)
                    runStart = index
                }
                position = .lineStart
            case ASCII.cr:
                position = .afterCR
            case UInt8(ascii: "."):
                if position == .lineStart || position == .messageStart {
                    output.append(contentsOf: UnsafeBufferPointer(rebasing: input[runStart..<index]))
                    output.append(UInt8(ascii: "."))
                    runStart = index
                }
                position = .midLine
            default:
                position = .midLine
            }
        }
        output.append(contentsOf: UnsafeBufferPointer(rebasing: input[runStart..<input.count]))
    }

    /// Ends the message: CRLF if it did not end with one, then ".\r\n". The stuffer is then ready
    /// for another message.
    public mutating func finish(into output: inout [UInt8]) {
        if position != .lineStart { output.append(contentsOf: ASCII.crlf) }
        output.append(contentsOf: [UInt8(ascii: "."), ASCII.cr, ASCII.lf])
        position = .messageStart
    }
}
