import IMAP
import POP3
import Wire

/// The UPDATE state (RFC 1939 §6): entered only by QUIT in TRANSACTION. The retention policy becomes a
/// list of UID commands run one after another; `+OK` is answered only when all of them succeeded.
struct Update: Sendable {
    enum Step: Sendable, Equatable {
        case store(UIDSet, flags: [String])
        case expunge(UIDSet)
        case move(UIDSet, to: String)
        case copy(UIDSet, to: String)
        case create(String)
    }

    var steps: [Step]
    var index = 0
    var createdFolder = false
    var outcome: RetentionOutcome
}

extension GatewaySession {
    mutating func quit() -> [SessionAction] {
        guard let drop = maildrop else { return [] }
        let deleted = drop.deletedUIDs
        var steps: [Update.Step] = []

        let policy = self.policy
        var retrievedFlags: [String] = []
        if policy.retention.onRetrieve == .seen { retrievedFlags.append("\\Seen") }
        if policy.visible == .notPopped { retrievedFlags.append(policy.retrievedKeyword) }
        let retrieved = drop.retrievedUIDs
        if !retrieved.isEmpty && !retrievedFlags.isEmpty { steps.append(.store(UIDSet(retrieved), flags: retrievedFlags)) }
        var outcome = RetentionOutcome.none
        if !deleted.isEmpty {
            // The plan was fixed at login; a session without one never got past SELECT.
            guard let plan = retentionPlan else {
                summary.retention = .failed
                return endSession(.backendError, notifyClient: POP3Response.err("Deleted messages could not be removed.", code: .sysTemp))
            }
            let set = UIDSet(deleted)
            let folder = plan.moveTo
            switch plan.onDelete {
            case .expunge:
                steps += [.store(set, flags: ["\\Deleted"]), .expunge(set)]
                outcome = .expunged
            case .move:
                if plan.hasMove {
                    steps += [.store(set, flags: ["\\Seen"]), .move(set, to: folder)]
                } else {
                    steps += [.store(set, flags: ["\\Seen"]), .copy(set, to: folder), .store(set, flags: ["\\Deleted"]), .expunge(set)]
                }
                outcome = .moved
            case .flag:
                steps.append(.store(set, flags: [policy.retention.flagKeyword, "\\Seen"]))
                outcome = .flagged
            case .keep:
                steps.append(.store(set, flags: ["\\Seen"]))
                outcome = .kept
            }
        }
        guard !backendLost else {
            summary.retention = deleted.isEmpty ? .none : .failed
            return endSession(.backendError, notifyClient: POP3Response.err("Backend connection lost; nothing was changed.", code: .sysTemp))
        }
        phase = .update(Update(steps: steps, outcome: outcome))
        return runUpdateStep()
    }

    mutating func runUpdateStep() -> [SessionAction] {
        guard case .update(let update) = phase else { return [] }
        guard update.index < update.steps.count else {
            summary.retention = update.outcome
            return endSession(.quit, notifyClient: POP3Response.ok("Logging out."))
        }
        let command: IMAPCommand
        switch update.steps[update.index] {
        case .store(let set, let flags): command = .uidStore(set, addFlags: flags, silent: true)
        case .expunge(let set): command = .uidExpunge(set)
        case .move(let set, let folder): command = .uidMove(set, mailbox: folder)
        case .copy(let set, let folder): command = .uidCopy(set, mailbox: folder)
        case .create(let folder): command = .create(mailbox: folder)
        }
        return sendIMAP(command)
    }

    mutating func updateTagged(_ condition: IMAPCondition) -> [SessionAction] {
        guard case .update(var update) = phase else { return [] }
        let step = update.steps[update.index]
        if condition.status == .ok {
            update.index += 1
            phase = .update(update)
            return runUpdateStep()
        }
        switch step {
        case .move(_, let folder), .copy(_, let folder):
            // RFC 3501 §6.4.7: TRYCREATE means the target folder is missing: create it once, then retry.
            if condition.code == .tryCreate, !update.createdFolder {
                update.createdFolder = true
                update.steps.insert(.create(folder), at: update.index)
                phase = .update(update)
                return runUpdateStep()
            }
        case .create:
            if condition.code == .alreadyExists {
                update.index += 1
                phase = .update(update)
                return runUpdateStep()
            }
        case .store, .expunge:
            break
        }
        summary.retention = .failed
        return [.log(LogRecord(.error, "retention step failed: \(ASCII.sanitized(Array(condition.text.utf8)))"))]
            + endSession(.backendError, notifyClient: POP3Response.err("Some deleted messages were not removed.", code: .sysTemp))
    }
}
