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
        guard let base = input.baseAddress, !input.isEmpty else { return }
        let count = input.count
        // Bytes are copied in runs; a run is cut only where something must be inserted before a byte.
        // Only line starts and line ends need a look: the text between two LFs is skipped eight bytes at
        // a time (`ByteSearch`), not walked byte by byte.
        var runStart = 0
        var index = 0
        while index < count {
            if position == .afterCR && base[index] == ASCII.lf {
                index += 1
                position = .lineStart
                continue
            }
            if (position == .lineStart || position == .messageStart) && base[index] == UInt8(ascii: ".") {
                output.append(contentsOf: UnsafeBufferPointer(start: base + runStart, count: index - runStart))
                output.append(UInt8(ascii: "."))
                runStart = index
            }
            guard let lf = ByteSearch.firstIndex(of: ASCII.lf, in: input, from: index) else {
                position = base[count - 1] == ASCII.cr ? .afterCR : .midLine
                break
            }
            // The byte before the LF: in this chunk, or (LF first) what `position` remembers of the last one.
            let crBefore = lf > index ? base[lf - 1] == ASCII.cr : position == .afterCR
            if !crBefore {
                output.append(contentsOf: UnsafeBufferPointer(start: base + runStart, count: lf - runStart))
                output.append(ASCII.cr)
                runStart = lf
            }
            position = .lineStart
            index = lf + 1
        }
        output.append(contentsOf: UnsafeBufferPointer(start: base + runStart, count: count - runStart))
    }

    /// Ends the message: CRLF if it did not end with one, then ".\r\n". The stuffer is then ready
    /// for another message.
    public mutating func finish(into output: inout [UInt8]) {
        if position != .lineStart { output.append(contentsOf: ASCII.crlf) }
        output.append(contentsOf: [UInt8(ascii: "."), ASCII.cr, ASCII.lf])
        position = .messageStart
    }
}
