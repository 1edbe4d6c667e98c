import IMAP
import POP3
import Wire

/// RETR in progress: `UID FETCH uid BODY.PEEK[]`, the literal streamed through the dot-stuffer.
struct Retrieve: Sendable {
    var number: MessageNumber
    var uid: UID
    var size: UInt64
    var stuffer = DotStuffer()
    /// `+OK` went out: from here on only closing the connection can signal a failure.
    var started = false
    var bytes: UInt64 = 0
    var complete = false
    /// The UID of the FETCH response being parsed; a body is relayed only under the UID asked for.
    var fetchUID: UID?
    /// Bytes of the current body go to the client (the body belongs to this message).
    var receiving = false
    /// The body came before the response's UID (RFC 3501 leaves the order of FETCH items to the server;
    /// pymap sends `BODY[]` first): it is relayed at once and the UID must confirm it before the
    /// response ends, or the session is cut off mid-answer so the client discards what it got.
    var uidPending = false
}

/// A LIST or UIDL answer in progress: the next entry to describe.
struct Listing: Sendable {
    enum Kind: Sendable { case list, uidl }
    var kind: Kind
    var next = 0
}

/// TOP in progress: `UID FETCH uid BODY.PEEK[]<offset.chunk>` repeated until the filter has what it needs,
/// so a large message is not fetched whole for a few lines.
struct Top: Sendable {
    var number: MessageNumber
    var uid: UID
    var filter: TopFilter
    var stuffer = DotStuffer()
    var started = false
    var offset: UInt64 = 0
    var chunkLength: UInt64
    var receivedInChunk: UInt64 = 0
    var sawBody = false
    /// RFC822.SIZE from the snapshot: a backend that keeps sending full chunks far past it is not followed.
    var size: UInt64
    var fetchUID: UID?
    var receiving = false
    /// As `Retrieve.uidPending`, for the current chunk.
    var uidPending = false
}

/// The TRANSACTION state (RFC 1939 §5).
extension GatewaySession {
    mutating func transactionCommand(_ command: POP3Command) -> [SessionAction] {
        guard var drop = maildrop else { return [] }
        switch command {
        case .capa:
            return [.sendToClient(capabilityResponse())]
        case .noop:
            return [.sendToClient(POP3Response.ok(""))]
        case .stat:
            return [.sendToClient(POP3Response.ok("\(drop.visibleCount) \(drop.visibleSize)"))]
        case .list(nil):
            return beginListing(.list, header: POP3Response.ok("\(drop.visibleCount) messages:"))
        case .list(let number?):
            guard let entry = drop.visibleEntry(number) else { return missing(number, in: drop) }
            return [.sendToClient(POP3Response.ok("\(number) \(entry.size)"))]
        case .uidl(nil):
            return beginListing(.uidl, header: POP3Response.ok(""))
        case .uidl(let number?):
            guard drop.visibleEntry(number) != nil else { return missing(number, in: drop) }
            return [.sendToClient(POP3Response.ok("\(number) \(drop.uidl(at: number.rawValue - 1, format: settings.uidlFormat))"))]
        case .dele(let number):
            guard drop.visibleEntry(number) != nil else { return missing(number, in: drop) }
            drop.markDeleted(number)
            maildrop = drop
            return [.sendToClient(POP3Response.ok("Marked to be deleted."))]
        case .rset:
            _ = drop.unmarkAll()
            maildrop = drop
            return [.sendToClient(POP3Response.ok(""))]
        case .retr(let number):
            guard let entry = drop.visibleEntry(number) else { return missing(number, in: drop) }
            guard !backendLost else { return backendGoneAnswer() }
            phase = .retrieve(Retrieve(number: number, uid: entry.uid, size: entry.size))
            return sendIMAP(.uidFetch(UIDSet([entry.uid]), items: [.bodyPeek(partial: nil)]))
        case .top(let number, let lines):
            guard let entry = drop.visibleEntry(number) else { return missing(number, in: drop) }
            guard !backendLost else { return backendGoneAnswer() }
            let chunk = UInt64(settings.limits.topChunkSize)
            // A small message is cheapest in one whole fetch (chunkLength 0 means "whole").
            let top = Top(number: number, uid: entry.uid, filter: TopFilter(bodyLines: lines), chunkLength: entry.size <= chunk ? 0 : chunk, size: entry.size)
            phase = .top(top)
            return sendIMAP(.uidFetch(UIDSet([entry.uid]), items: [.bodyPeek(partial: top.chunkLength == 0 ? nil : .init(offset: 0, length: chunk))]))
        case .quit:
            return quit()
        case .user, .pass, .auth, .apop:
            return commandFailed("Already logged in.")
        case .stls:
            return commandFailed("STLS is only allowed before login.")
        }
    }

    /// `-ERR` for a message number that is out of range or marked deleted (RFC 1939 §5). A well-formed
    /// command about a message that is not there is no protocol error: it does not count towards
    /// `limits.maxErrors` (a client repeating DELE must not be cut off and lose its deletions).
    func missing(_ number: MessageNumber, in drop: Maildrop) -> [SessionAction] {
        switch drop.lookup(number) {
        case .deleted: [.sendToClient(POP3Response.err("Message \(number) is deleted."))]
        case .noSuchMessage, .found: [.sendToClient(POP3Response.err("There's no message \(number)."))]
        }
    }

    // MARK: LIST and UIDL

    mutating func beginListing(_ kind: Listing.Kind, header: [UInt8]) -> [SessionAction] {
        phase = .listing(Listing(kind: kind))
        return [.sendToClient(header)] + continueListing()
    }

    /// Generates the next `limits.outputChunkSize` of a LIST/UIDL answer; the rest waits until the
    /// client has taken it (`.requestClientWritable`), so a 100,000-message UIDL repeated by a client
    /// that never reads costs no more memory than one chunk and the driver's high watermark.
    mutating func continueListing() -> [SessionAction] {
        guard case .listing(var listing) = phase, let drop = maildrop else { return [] }
        var output: [UInt8] = []
        let entries = drop.entries
        var index = listing.next
        while index < entries.count && output.count < settings.limits.outputChunkSize {
            let entry = entries[index]
            index += 1
            guard !entry.markedDeleted else { continue }
            ASCII.appendDigits(UInt64(index), to: &output)
            output.append(ASCII.space)
            switch listing.kind {
            case .list: ASCII.appendDigits(entry.size, to: &output)
            case .uidl: drop.appendUIDL(at: index - 1, format: settings.uidlFormat, to: &output)
            }
            output.append(contentsOf: ASCII.crlf)
        }
        guard index >= entries.count else {
            listing.next = index
            phase = .listing(listing)
            awaitingWritable = true
            return [.sendToClient(output), .requestClientWritable]
        }
        output += POP3Response.terminator
        phase = .transaction
        // The caller goes on with the next command: `processClientInput`'s loop when the answer fit in
        // one chunk, `resumeGeneratedOutput` otherwise. Calling it from here would recurse once per
        // pipelined LIST/UIDL (a stack overflow for a few hundred of them).
        return [.sendToClient(output)]
    }

    static func isExpungeIssued(_ condition: IMAPCondition) -> Bool {
        if condition.status == .no, case .other(let name, _)? = condition.code, name == "EXPUNGEISSUED" { return true }
        return false
    }

    mutating func backendGoneAnswer() -> [SessionAction] {
        endSession(.backendError, notifyClient: POP3Response.err("Backend connection lost.", code: .sysTemp))
    }

    // MARK: RETR

    mutating func retrieveResponse(_ response: IMAPResponse) -> [SessionAction] {
        guard case .retrieve(var state) = phase else { return [] }
        var output: [UInt8] = []
        switch response {
        case .fetchBegin:
            state.fetchUID = nil
        case .fetchAttribute(.uid(let uid)):
            state.fetchUID = uid
            if state.uidPending {
                // Another message's body was relayed: only closing keeps the client from taking it.
                guard uid == state.uid else { return bodyOfAnotherMessage() }
                state.uidPending = false
                if !state.receiving && !state.complete {
                    // The body ended before its UID came: its end goes out now.
                    state.complete = true
                    state.stuffer.finish(into: &output)
                }
            }
        case .fetchEnd:
            if state.uidPending { return bodyOfAnotherMessage() }
        case .fetchBodyBegin(let section, let origin, let size):
            // Only the whole body of the message asked for; another message's body is never sent.
            guard size != nil, !state.started, state.fetchUID == state.uid || state.fetchUID == nil, section.isEmpty, origin == nil else { break }
            state.uidPending = state.fetchUID == nil
            state.started = true
            state.receiving = true
            output = POP3Response.ok("\(state.size) octets")
        case .fetchBodyBytes(let bytes):
            guard state.receiving else { break }
            state.bytes &+= UInt64(bytes.count)
            state.stuffer.process(bytes, into: &output)
        case .fetchBodyEnd:
            guard state.receiving else { break }
            state.receiving = false
            // The terminating dot waits for a UID still to come.
            guard !state.uidPending else { break }
            state.complete = true
            state.stuffer.finish(into: &output)
        default:
            break
        }
        phase = .retrieve(state)
        return output.isEmpty ? [] : [.sendToClient(output)]
    }

    /// A body relayed before its UID turned out to be another message's, or its response carried no UID
    /// (RFC 3501 §6.4.8 requires it): the session ends mid-answer, without the terminating dot.
    mutating func bodyOfAnotherMessage() -> [SessionAction] {
        [.log(LogRecord(.warning, "backend sent a message body without the UID asked for"))]
            + endSession(.backendError, notifyClient: nil)
    }

    mutating func retrieveTagged(_ condition: IMAPCondition) -> [SessionAction] {
        guard case .retrieve(let state) = phase else { return [] }
        if state.started {
            guard state.complete, condition.status == .ok else {
                return endSession(.backendError, notifyClient: nil)
            }
            maildrop?.markRetrieved(state.number)
            summary.retrieved += 1
            summary.retrievedBytes = summary.retrievedBytes.saturatingAdding(state.bytes)
            phase = .transaction
            return processClientInput()
        }
        phase = .transaction
        if condition.status == .ok || Self.isExpungeIssued(condition) {
            // UID FETCH of an expunged UID answers OK with no data (RFC 3501 §6.4.8), or
            // NO [EXPUNGEISSUED] (RFC 5530) when the expunge is not yet announced to us.
            return [.sendToClient(POP3Response.err("Message \(state.number) was removed by another client."))] + processClientInput()
        }
        return [.sendToClient(POP3Response.err("Backend could not fetch the message.", code: .sysTemp))] + processClientInput()
    }

    // MARK: TOP

    mutating func topResponse(_ response: IMAPResponse) -> [SessionAction] {
        guard case .top(var state) = phase else { return [] }
        var output: [UInt8] = []
        switch response {
        case .fetchBegin:
            state.fetchUID = nil
        case .fetchAttribute(.uid(let uid)):
            state.fetchUID = uid
            if state.uidPending {
                guard uid == state.uid else { return bodyOfAnotherMessage() }
                state.uidPending = false
            }
        case .fetchEnd:
            if state.uidPending { return bodyOfAnotherMessage() }
        case .fetchBodyBegin(let section, let origin, let size):
            // The section and the chunk asked for, of the message asked for (`BODY[]<offset>` for a chunk).
            let expectedOrigin: UInt64? = state.chunkLength == 0 ? nil : state.offset
            guard size != nil, !state.sawBody, state.fetchUID == state.uid || state.fetchUID == nil, section.isEmpty, origin == expectedOrigin else { break }
            state.uidPending = state.fetchUID == nil
            state.sawBody = true
            state.receiving = true
            state.receivedInChunk = 0
            if !state.started {
                state.started = true
                output = POP3Response.ok("")
            }
        case .fetchBodyEnd:
            state.receiving = false
        case .fetchBodyBytes(let bytes):
            guard state.receiving else { break }
            state.receivedInChunk &+= UInt64(bytes.count)
            if !state.filter.isComplete {
                var filtered: [UInt8] = []
                state.filter.process(bytes, into: &filtered)
                state.stuffer.process(filtered, into: &output)
            }
        default:
            break
        }
        phase = .top(state)
        return output.isEmpty ? [] : [.sendToClient(output)]
    }

    mutating func topTagged(_ condition: IMAPCondition) -> [SessionAction] {
        guard case .top(var state) = phase else { return [] }
        if !state.started && Self.isExpungeIssued(condition) {
            phase = .transaction
            return [.sendToClient(POP3Response.err("Message \(state.number) was removed by another client."))] + processClientInput()
        }
        guard condition.status == .ok else {
            if state.started { return endSession(.backendError, notifyClient: nil) }
            phase = .transaction
            return [.sendToClient(POP3Response.err("Backend could not fetch the message.", code: .sysTemp))] + processClientInput()
        }
        guard state.started else {
            phase = .transaction
            return [.sendToClient(POP3Response.err("Message \(state.number) was removed by another client."))] + processClientInput()
        }
        // A backend that keeps sending full chunks well past the message's size is not followed forever.
        let pastSize = state.offset >= state.size.saturatingAdding(state.size).saturatingAdding(state.chunkLength)
        let endOfMessage = state.chunkLength == 0 || !state.sawBody || state.receivedInChunk < state.chunkLength || pastSize
        if state.filter.isComplete || endOfMessage {
            var output: [UInt8] = []
            state.stuffer.finish(into: &output)
            summary.topCount += 1
            phase = .transaction
            return [.sendToClient(output)] + processClientInput()
        }
        state.offset += state.chunkLength
        state.sawBody = false
        phase = .top(state)
        return sendIMAP(.uidFetch(UIDSet([state.uid]), items: [.bodyPeek(partial: .init(offset: state.offset, length: state.chunkLength))]))
    }
}
