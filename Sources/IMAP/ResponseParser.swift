import Wire

/// The incremental parser of an IMAP4rev1 server's response stream (RFC 3501 §7).
///
/// Feed bytes as they come off the connection with `append`, then call `next()` until it returns nil
/// ("need more bytes"). Bytes may be split anywhere: inside a tag, a literal header, a CRLF, a body.
///
///     S: * 2 FETCH (UID 7 BODY[] {5}
///     S: hello)
///     S: A4 OK Fetch completed.
///
/// gives `fetchBegin(2)`, `fetchAttribute(.uid(7))`, `fetchBodyBegin(section: "", origin: nil, size: 5)`,
/// `fetchBodyBytes("hello")` (possibly in several chunks), `fetchBodyEnd`, `fetchEnd`,
/// `tagged(A4, OK "Fetch completed.")`.
///
/// Memory stays bounded by the options: a response is parsed once its line is complete (at most
/// `maxLineLength`), message bodies are handed out in chunks as they arrive, and what is only skipped
/// (unknown responses and FETCH items, with their literals) is consumed while it is scanned; its event
/// comes once the skip is complete. Nothing that still has to be returned is consumed on "need more".
public struct IMAPResponseParser: Sendable {
    /// Every limit is named; exceeding one is an error of its own.
    public struct Options: Sendable {
        /// Longest line, or part of a line between literals, without its CRLF → `.lineTooLong`.
        public var maxLineLength = 65536
        /// Largest literal other than a message body → `.literalTooLarge`.
        public var maxLiteralSize = 1 << 20
        /// Largest `fetchBodyBytes` chunk.
        public var maxBodyChunk = 65536
        public init() {}
    }

    enum State: Sendable {
        /// At the start of a response: waiting for its first line.
        case responseStart
        /// Inside a literal of an unknown untagged response, being skipped.
        case skippingLiteral(keyword: String, remaining: Int)
        /// After such a literal: waiting for the rest of the line.
        case skippingLine(keyword: String)
        /// In a FETCH attribute list: the next item, or ")" CRLF. No SP before the first item.
        case fetchItems(first: Bool)
        /// Skipping the value of an unused FETCH item.
        case fetchSkipping(name: String, skipper: ValueSkipper)
        /// Handing out a body literal.
        case bodyLiteral(remaining: Int)
        /// Handing out a body sent as a quoted string.
        case bodyQuoted(bytes: [UInt8], sent: Int)
        case bodyEnd
    }

    /// What one step of the state machine achieved.
    enum Step {
        case emit(IMAPResponse)
        case needMore
        /// The state changed without an event; step again.
        case proceed
    }

    /// Don't keep a big buffer's memory around once it has been read.
    static let retainedCapacity = 1 << 18

    let options: Options
    var storage: [UInt8] = []
    var readIndex = 0
    var state: State = .responseStart
    /// How far the current line has been searched for its LF, relative to `readIndex`.
    var lineScanOffset = 0
    /// Bytes of the current FETCH line section already consumed (the line limit counts them).
    var lineSectionLength = 0
    var failure: IMAPParseError?

    public init(options: Options = Options()) {
        self.options = options
    }

    /// Bytes received but not yet consumed.
    public var bufferedByteCount: Int { storage.count - readIndex }

    /// Bytes of memory the buffer holds (used or not).
    public var bufferCapacity: Int { storage.capacity }

    /// Gives the buffer's memory back when it holds nothing unread between responses: after a snapshot
    /// or a message body it may have grown to several reads' worth, which an idle session should not
    /// keep. Cheap when there is nothing to give back.
    public mutating func releaseIdleMemory() {
        guard case .responseStart = state, bufferedByteCount == 0, storage.capacity > 0 else { return }
        storage = []
        readIndex = 0
        lineScanOffset = 0
    }

    public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        guard failure == nil else { return }
        let unread = storage.count - readIndex
        // Compact only when the consumed prefix is at least as big as what is left: amortised O(1) per byte.
        if readIndex > 0 && (unread == 0 || (readIndex >= 4096 && readIndex >= unread)) {
            if storage.capacity > Self.retainedCapacity {
                storage = Array(storage[readIndex...])
            } else {
                storage.removeSubrange(0..<readIndex)
            }
            readIndex = 0
        }
        storage.append(contentsOf: bytes)
    }

    /// Next complete event, or nil when more bytes are needed. Never consumes on "need more" what is still
    /// to be returned; only bytes that are skipped anyway (unknown responses and FETCH items) are consumed
    /// while scanned, their progress kept in the state.
    /// After a thrown error the parser is unusable (the gateway drops the backend).
    public mutating func next() throws(IMAPParseError) -> IMAPResponse? {
        if let failure { throw failure }
        do throws(IMAPParseError) {
            while true {
                switch try step() {
                case .emit(let response): return response
                case .needMore: return nil
                case .proceed: continue
                }
            }
        } catch {
            failure = error
            storage = []
            readIndex = 0
            throw error
        }
    }

    mutating func step() throws(IMAPParseError) -> Step {
        switch state {
        case .responseStart:
            guard let lineLength = try scanLine() else { return .needMore }
            switch try Self.parseFirstLine(storage, from: readIndex, to: readIndex + lineLength) {
            case .complete(let response):
                consume(lineLength + 2)
                return .emit(response)
            case .fetch(let number, let prefixLength):
                consume(prefixLength)
                lineSectionLength = prefixLength
                state = .fetchItems(first: true)
                return .emit(.fetchBegin(number))
            case .other(let keyword):
                return try skippedLineEnded(keyword: keyword, lineLength: lineLength)
            }
        case .skippingLiteral(let keyword, let remaining):
            let count = Swift.min(remaining, bufferedByteCount)
            consume(count)
            if count < remaining {
                state = .skippingLiteral(keyword: keyword, remaining: remaining - count)
                return .needMore
            }
            state = .skippingLine(keyword: keyword)
            return .proceed
        case .skippingLine(let keyword):
            guard let lineLength = try scanLine() else { return .needMore }
            return try skippedLineEnded(keyword: keyword, lineLength: lineLength)
        case .fetchItems(let first):
            return try fetchItem(first: first)
        case .fetchSkipping(let name, var skipper):
            let (index, done) = try skipper.scan(storage, from: readIndex, to: storage.count)
            readIndex = index
            guard done else {
                state = .fetchSkipping(name: name, skipper: skipper)
                return .needMore
            }
            lineSectionLength = skipper.lineLength
            state = .fetchItems(first: false)
            return .emit(.fetchAttribute(.other(name: name)))
        case .bodyLiteral(let remaining):
            let count = Swift.min(remaining, bufferedByteCount, Swift.max(options.maxBodyChunk, 1))
            guard count > 0 else { return .needMore }
            let chunk = Array(storage[readIndex..<readIndex + count])
            readIndex += count
            state = count < remaining ? .bodyLiteral(remaining: remaining - count) : .bodyEnd
            return .emit(.fetchBodyBytes(chunk))
        case .bodyQuoted(let bytes, let sent):
            let count = Swift.min(bytes.count - sent, Swift.max(options.maxBodyChunk, 1))
            state = sent + count < bytes.count ? .bodyQuoted(bytes: bytes, sent: sent + count) : .bodyEnd
            return .emit(.fetchBodyBytes(Array(bytes[sent..<sent + count])))
        case .bodyEnd:
            state = .fetchItems(first: false)
            return .emit(.fetchBodyEnd)
        }
    }

    mutating func consume(_ count: Int) {
        readIndex += count
        lineScanOffset = 0
    }

    /// Finds the CRLF that ends the line starting at `readIndex`; returns the line's length without it.
    /// Resumes where the previous call stopped, so a long line arriving in pieces is searched once.
    mutating func scanLine() throws(IMAPParseError) -> Int? {
        let start = readIndex
        let from = start + lineScanOffset
        guard let lf = Self.firstLF(in: storage, from: from) else {
            lineScanOffset = storage.count - start
            // One more byte is allowed: it may be the CR.
            if lineScanOffset > options.maxLineLength + 1 { throw .lineTooLong }
            return nil
        }
        // The limit first: fed in pieces, a line this long fails as too long before its LF arrives,
        // so it must fail the same way when the LF is already here (drip-feed equality).
        guard lf - start <= options.maxLineLength + 1 else { throw .lineTooLong }
        guard lf > start, storage[lf - 1] == ASCII.cr else { throw .malformed("line ends in LF without CR") }
        let length = lf - 1 - start
        guard length <= options.maxLineLength else { throw .lineTooLong }
        return length
    }

    /// The index of the first LF at or after `from`, eight bytes at a time.
    static func firstLF(in bytes: [UInt8], from: Int) -> Int? {
        bytes.withUnsafeBufferPointer { ByteSearch.firstIndex(of: ASCII.lf, in: $0, from: from) }
    }

    /// A line of an unknown response is complete: it either announces a literal or ends the response.
    mutating func skippedLineEnded(keyword: String, lineLength: Int) throws(IMAPParseError) -> Step {
        let literal = try literalSize(atEndOf: storage[readIndex..<readIndex + lineLength])
        consume(lineLength + 2)
        if let literal {
            state = .skippingLiteral(keyword: keyword, remaining: literal)
            return .proceed
        }
        state = .responseStart
        return .emit(.other(keyword: keyword))
    }

    /// The size in `{n}` (or `{n+}`, `~{n}`) when the line ends with a literal header.
    func literalSize(atEndOf line: ArraySlice<UInt8>) throws(IMAPParseError) -> Int? {
        guard line.last == Byte.closeBrace else { return nil }
        var digitsEnd = line.endIndex - 1
        if digitsEnd > line.startIndex && line[digitsEnd - 1] == Byte.plus { digitsEnd -= 1 }
        var digitsStart = digitsEnd
        while digitsStart > line.startIndex && ASCII.isDigit(line[digitsStart - 1]) { digitsStart -= 1 }
        guard digitsStart < digitsEnd, digitsStart > line.startIndex, line[digitsStart - 1] == Byte.openBrace else {
            return nil
        }
        guard let size = ASCII.parseUnsigned(line[digitsStart..<digitsEnd]), size <= UInt64(options.maxLiteralSize) else {
            throw .literalTooLarge
        }
        return Int(size)
    }
}
