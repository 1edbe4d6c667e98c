import Wire

/// Splits the client's byte stream into command lines (RFC 1939 §3: CRLF-terminated; a bare LF is
/// accepted too, and the CR before the LF is stripped).
///
/// ```
/// append("USER a\r\nPA") → next() = .line("USER a"), next() = nil
/// append("SS b\n")       → next() = .line("PASS b")
/// ```
///
/// A line longer than `maxLineLength` (RFC 2449 §4: 255 octets, plus slack) produces `.tooLong` once;
/// the rest of it, up to and including its LF, is dropped as it arrives, never buffered, and the
/// following line is framed normally. Memory per unterminated line is therefore bounded by
/// `maxLineLength + 2` bytes. Each byte is scanned a constant number of times (no O(n²)).
public struct LineFramer: Sendable {
    public enum Event: Sendable, Equatable {
        case line([UInt8])
        case tooLong
    }

    /// The longest line accepted, without its CRLF.
    public let maxLineLength: Int

    private enum Mode: Sendable {
        /// Buffering the current line.
        case normal
        /// The current line is over the limit and `next()` has not said so yet: its first
        /// `maxLineLength + 2` bytes stay buffered as evidence, the rest is dropped up to its LF,
        /// which is kept so `next()` sees one complete (too long) line.
        case truncating
        /// `next()` has reported the current line as too long: drop everything up to and including its LF.
        case discarding
    }

    private var buffer: [UInt8] = []
    /// Start of the unread bytes in `buffer` (consumed lines are dropped lazily, in bulk).
    private var head = 0
    /// Bytes at the end of `buffer` after its last LF: the current, unterminated line.
    private var tailLength = 0
    private var mode = Mode.normal

    public init(maxLineLength: Int) {
        self.maxLineLength = Swift.max(0, maxLineLength)
    }

    /// Bytes held and not yet returned as lines.
    public var bufferedByteCount: Int { buffer.count - head }

    public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        let handled: Void? = bytes.withContiguousStorageIfAvailable { appendContiguous($0) }
        if handled == nil {
            Array(bytes).withUnsafeBufferPointer { appendContiguous($0) }
        }
    }

    private mutating func appendContiguous(_ input: UnsafeBufferPointer<UInt8>) {
        // A line of `maxLineLength` bytes plus CR is still fine, so keep one byte more than that
        // before deciding: a partial line of this length is over the limit whatever follows.
        let cap = maxLineLength + 2
        var index = 0
        while index < input.count {
            let lf = input[index...].firstIndex(of: ASCII.lf)
            switch mode {
            case .discarding:
                guard let lf else { return }
                index = lf + 1
                mode = .normal
            case .truncating:
                guard let lf else { return }
                buffer.append(ASCII.lf)
                tailLength = 0
                index = lf + 1
                mode = .normal
            case .normal:
                let end = lf ?? input.count
                let room = cap - tailLength
                if end - index <= room {
                    buffer.append(contentsOf: UnsafeBufferPointer(rebasing: input[index..<end]))
                    if let lf {
                        buffer.append(ASCII.lf)
                        tailLength = 0
                        index = lf + 1
                    } else {
                        tailLength += end - index
                        index = end
                    }
                } else {
                    buffer.append(contentsOf: UnsafeBufferPointer(rebasing: input[index..<(index + room)]))
                    tailLength = cap
                    index += room
                    mode = .truncating
                }
            }
        }
    }

    /// The next line, `.tooLong` once for a line over the limit, or nil when more bytes are needed.
    public mutating func next() -> Event? {
        let unread = buffer.count - head
        if unread > tailLength {
            // A complete line starts at `head`.
            var lf = head
            while buffer[lf] != ASCII.lf { lf += 1 }
            var end = lf
            if end > head && buffer[end - 1] == ASCII.cr { end -= 1 }
            let event: Event = end - head > maxLineLength ? .tooLong : .line(Array(buffer[head..<end]))
            head = lf + 1
            compact()
            return event
        }
        // Only an unterminated line is left: report it early once it cannot fit any more.
        let overLimit = mode == .truncating
            || tailLength > maxLineLength + 1
            || (tailLength == maxLineLength + 1 && buffer.last != ASCII.cr)
        guard overLimit else { return nil }
        buffer.removeAll(keepingCapacity: true)
        head = 0
        tailLength = 0
        mode = .discarding
        return .tooLong
    }

    /// Bytes of memory the buffer holds (used or not).
    public var bufferCapacity: Int { buffer.capacity }

    /// Gives the buffer's memory back when nothing is buffered: an idle session should not keep the
    /// capacity a burst of pipelined commands grew. Cheap when there is nothing to give back.
    public mutating func releaseIdleMemory() {
        guard bufferedByteCount == 0, buffer.capacity > 0 else { return }
        buffer = []
        head = 0
    }

    /// Throws away everything buffered (RFC 2595 §4, CVE-2011-0411: plaintext pipelined after STLS
    /// must not be read as if it had arrived over TLS).
    public mutating func discardBuffered() {
        buffer.removeAll()
        head = 0
        tailLength = 0
        mode = .normal
    }

    private mutating func compact() {
        if head == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 4096 && head * 2 >= buffer.count {
            // Amortised: at least as many bytes were consumed as are moved.
            buffer.removeFirst(head)
            head = 0
        }
    }
}
