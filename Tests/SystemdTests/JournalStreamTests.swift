import Glibc
import Systemd
import XCTest

final class JournalStreamTests: XCTestCase {
    private func stderrIdentity() throws -> (device: UInt64, inode: UInt64) {
        var status = stat()
        guard fstat(2, &status) == 0 else { throw XCTSkip("fd 2 is not open") }
        return (UInt64(status.st_dev), UInt64(status.st_ino))
    }

    func testMatchingValue() throws {
        let (device, inode) = try stderrIdentity()
        XCTAssertTrue(JournalStream.stderrIsJournal(journalStream: "\(device):\(inode)"))
    }

    func testOtherStream() throws {
        let (device, inode) = try stderrIdentity()
        XCTAssertFalse(JournalStream.stderrIsJournal(journalStream: "\(device):\(inode &+ 1)"))
        XCTAssertFalse(JournalStream.stderrIsJournal(journalStream: "\(device &+ 1):\(inode)"))
        XCTAssertFalse(JournalStream.stderrIsJournal(journalStream: "\(inode):\(device)"))
    }

    func testUnsetOrGarbage() throws {
        let (device, inode) = try stderrIdentity()
        XCTAssertFalse(JournalStream.stderrIsJournal(journalStream: nil))
        for garbage in [
            "", ":", "abc", "\(device)", "\(device):", ":\(inode)", "\(device):\(inode):1", "+\(device):\(inode)",
            "-\(device):\(inode)", " \(device):\(inode)", "\(device):\(inode) ", "\(device):\(inode)\n",
            "\(device);\(inode)", "0x\(String(device, radix: 16)):\(inode)", "99999999999999999999999:\(inode)",
        ] {
            XCTAssertFalse(JournalStream.stderrIsJournal(journalStream: garbage), garbage.debugDescription)
        }
    }
}
