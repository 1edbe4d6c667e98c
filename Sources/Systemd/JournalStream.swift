import Glibc

/// Detects whether stderr goes to the journal, so the executable can switch from logfmt on stderr to
/// native journal entries (which keep metadata as fields).
///
/// systemd sets `JOURNAL_STREAM=<st_dev>:<st_ino>` (decimal) for the stream it connects to stdout/stderr
/// (`systemd.exec(5)`). The variable is inherited by children whose stderr may have been redirected,
/// so it only counts when fd 2 is still that very stream.
public enum JournalStream {
    /// - Parameter journalStream: the value of `JOURNAL_STREAM`, read by the caller (this module does
    ///   not read the environment), or `nil` when unset.
    /// - Returns: `true` when the value parses and `fstat(2)` of fd 2 has the same device and inode.
    public static func stderrIsJournal(journalStream: String?) -> Bool {
        guard let journalStream, let (device, inode) = parse(journalStream) else {
            return false
        }
        var status = stat()
        guard fstat(2, &status) == 0 else {
            return false
        }
        return UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode
    }

    /// `"DEV:INODE"`, two unsigned decimal numbers without sign or spaces.
    static func parse(_ value: String) -> (device: UInt64, inode: UInt64)? {
        let parts = value.utf8.split(separator: UInt8(ascii: ":"), maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 2, let device = decimal(parts[0]), let inode = decimal(parts[1]) else {
            return nil
        }
        return (device, inode)
    }

    private static func decimal(_ digits: Substring.UTF8View) -> UInt64? {
        guard !digits.isEmpty else { return nil }
        var result: UInt64 = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times10, overflow1) = result.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return nil }
            result = sum
        }
        return result
    }
}
