import Gateway
import XCTest

final class UIDLFormatTests: XCTestCase {
    func testDovecotDefault() {
        XCTAssertEqual(UIDLFormat.dovecotDefault.uidl(uid: 1, uidValidity: 1_732_780_000), "0000000167481fe0")
        XCTAssertEqual(UIDLFormat.dovecotDefault.uidl(uid: 0xFFFF_FFFF, uidValidity: 0x10), "ffffffff00000010")
    }

    func testOtherFormats() throws {
        XCTAssertEqual(try UIDLFormat(parsing: "%v.%u").uidl(uid: 42, uidValidity: 7), "7.42")
        XCTAssertEqual(try UIDLFormat(parsing: "%xu-%%").uidl(uid: 255, uidValidity: 7), "ff-%")
    }

    func testErrors() {
        XCTAssertThrowsError(try UIDLFormat(parsing: "%v")) { XCTAssertEqual($0 as? UIDLFormat.ParseError, .noUID) }
        XCTAssertThrowsError(try UIDLFormat(parsing: "%m")) { XCTAssertEqual($0 as? UIDLFormat.ParseError, .unsupportedVariable("m")) }
        XCTAssertThrowsError(try UIDLFormat(parsing: "%u%")) { XCTAssertEqual($0 as? UIDLFormat.ParseError, .danglingPercent) }
        XCTAssertThrowsError(try UIDLFormat(parsing: "a b%u")) { XCTAssertEqual($0 as? UIDLFormat.ParseError, .invalidCharacter) }
        XCTAssertThrowsError(try UIDLFormat(parsing: "%8u")) { XCTAssertEqual($0 as? UIDLFormat.ParseError, .spacePadding) }
    }
}

final class UIDLPresetTests: XCTestCase {
    func testSupportedPresetsAreDovecotsTable() throws {
        let expected: [(String, String, String)] = [
            ("dovecot", "%08Xu%08Xv", "0000002a0000000f"),
            ("dovecot-0.99", "%v.%u", "15.42"),
            ("uw-imap", "%08Xv%08Xu", "0000000f0000002a"),
            ("cyrus", "%v.%u", "15.42"),
            ("cyrus-old", "%u", "42"),
        ]
        for (name, format, uidl) in expected {
            let preset = try UIDLFormat(configured: name)
            XCTAssertEqual(preset.description, format, name)
            XCTAssertEqual(preset.preset?.rawValue, name)
            XCTAssertEqual(preset.uidl(uid: 42, uidValidity: 15), uidl, name)
        }
        XCTAssertEqual(try UIDLFormat(configured: "%v-%u").uidl(uid: 42, uidValidity: 15), "15-42", "a format is still a format")
        XCTAssertNil(try UIDLFormat(configured: "%v-%u").preset)
    }

    func testPresetsThatIMAPCannotReproduceAreRefusedWithTheReason() {
        for name in ["courier-v0", "courier-v1", "courier-v2", "courier-v3", "tpop3d"] {
            XCTAssertThrowsError(try UIDLFormat(configured: name), name) { error in
                guard case .unsupportedPreset(let refused, let reason)? = error as? UIDLFormat.ParseError else {
                    return XCTFail("\(error)")
                }
                XCTAssertEqual(refused, name)
                XCTAssertFalse(reason.isEmpty)
                XCTAssertTrue("\(error)".hasPrefix("preset \(name) cannot be reproduced over IMAP: "), "\(error)")
            }
        }
        XCTAssertTrue("\(UIDLFormat.ParseError.unsupportedPreset(name: "courier-v2", reason: UIDLFormat.Preset.courierV2.refusal!))".contains("courierpop3dsizelist"))
        XCTAssertTrue(UIDLFormat.Preset.courierV0.refusal!.contains("file names"))
    }

    func testUnknownNamesAndContentVariables() {
        XCTAssertThrowsError(try UIDLFormat(configured: "exchange")) { error in
            XCTAssertEqual("\(error)", "\"exchange\" is neither a preset (dovecot, dovecot-0.99, uw-imap, cyrus, cyrus-old) nor a format with %u")
        }
        XCTAssertThrowsError(try UIDLFormat(configured: "Dovecot"), "names are lower-case")
        for (variable, why) in [("m", "mbox only"), ("f", "file name"), ("g", "GUID")] {
            XCTAssertThrowsError(try UIDLFormat(configured: "%u%\(variable)")) { error in
                XCTAssertEqual(error as? UIDLFormat.ParseError, .unsupportedVariable(Character(variable)))
                XCTAssertTrue("\(error)".contains(why), "\(error)")
            }
        }
    }
}
