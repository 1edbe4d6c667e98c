import Foundation
import Gateway
import Routing
import XCTest

@testable import Config

final class ConfigLoaderTests: XCTestCase {
    // MARK: Helpers

    private func problems(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> [ConfigProblem] {
        do {
            let loaded = try ConfigLoader.parse(yaml: yaml)
            XCTFail("expected problems, got \(loaded.config)", file: file, line: line)
            return []
        } catch {
            XCTAssertFalse(error.problems.isEmpty, file: file, line: line)
            return error.problems
        }
    }

    private func descriptions(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        problems(yaml, file: file, line: line).map(\.description)
    }

    /// A valid base; tests append or replace lines.
    private let minimal = """
        listeners:
          - name: test
            address: 127.0.0.1:0
            tls: none
            allow_plaintext_auth: true
        backend:
          address: 127.0.0.1:143
        """

    // MARK: Valid files

    func testFullConfigRoundTrip() throws {
        let yaml = """
            listeners:
              - name: pop3
                address: 0.0.0.0:110
                tls: starttls
                allow_plaintext_auth: true
              - name: pop3s
                address: "[::]:995"
                tls: implicit
              - name: lo_plain.1-x
                address: localhost:1110
                tls: none
                allow_plaintext_auth: yes
            tls:
              certificate: /etc/popgate/tls/fullchain.pem
              key: /etc/popgate/tls/privkey.pem
            backend:
              address: imap.example.net:143
              tls: starttls
              ca_file: /etc/ssl/certs/ca.pem
              server_name: mail.example.net
              verify_certificate: false
            mailbox: Mail/POP
            uidl_format: "u%uv%08xv"
            retention:
              on_retrieve: none
              on_delete: move
              move_to: Archive/POP
              flag_keyword: $Gone
            timeouts:
              idle: 15m
              backend: 1500ms
            auth:
              failure_delay: 0
            log:
              level: debug
            """
        let loaded = try ConfigLoader.parse(yaml: yaml)
        let expected = PopGateConfig(
            listeners: [
                .init(name: "pop3", host: "0.0.0.0", port: 110, tls: .starttls, allowPlaintextAuth: true),
                .init(name: "pop3s", host: "::", port: 995, tls: .implicit, allowPlaintextAuth: false),
                .init(name: "lo_plain.1-x", host: "localhost", port: 1110, tls: .none, allowPlaintextAuth: true),
            ],
            tls: .init(certificate: "/etc/popgate/tls/fullchain.pem", key: "/etc/popgate/tls/privkey.pem"),
            backend: .init(host: "imap.example.net", port: 143, tls: .starttls, caFile: "/etc/ssl/certs/ca.pem", serverName: "mail.example.net", verifyCertificate: false),
            gateway: GatewaySettings(
                mailbox: "Mail/POP",
                uidlFormat: try UIDLFormat(parsing: "u%uv%08xv"),
                idleTimeout: .seconds(900),
                backendTimeout: .milliseconds(1500),
                authFailureDelay: .zero
            ),
            defaultPolicy: SessionPolicy(retention: RetentionPolicy(onRetrieve: .none, onDelete: .move, moveTo: "Archive/POP", flagKeyword: "$Gone")),
            logLevel: "debug"
        )
        XCTAssertEqual(loaded.config, expected)
        XCTAssertEqual(loaded.config.gateway.uidlFormat.uidl(uid: 26, uidValidity: 255), "u26v000000ff")
        XCTAssertEqual(loaded.config.backend.effectiveServerName, "mail.example.net")
        XCTAssertEqual(loaded.warnings.map(\.description), [
            "listeners[2]: tls none with allow_plaintext_auth: clients send passwords in clear text; use only on a trusted network or loopback (line 9)",
            "backend.verify_certificate: false: the backend's certificate is not checked; use only for testing (line 21)",
        ])
    }

    func testMinimalConfigGetsDefaults() throws {
        let loaded = try ConfigLoader.parse(yaml: minimal)
        let config = loaded.config
        XCTAssertEqual(config.listeners, [.init(name: "test", host: "127.0.0.1", port: 0, tls: .none, allowPlaintextAuth: true)])
        XCTAssertNil(config.tls)
        XCTAssertEqual(config.backend, .init(host: "127.0.0.1", port: 143, tls: .implicit, caFile: nil, serverName: nil, verifyCertificate: true))
        XCTAssertEqual(config.backend.effectiveServerName, "127.0.0.1")
        XCTAssertEqual(config.gateway, GatewaySettings())
        XCTAssertEqual(config.gateway.mailbox, "INBOX")
        XCTAssertEqual(config.gateway.uidlFormat.description, "%08Xu%08Xv")
        XCTAssertEqual(config.defaultPolicy, SessionPolicy(name: "default", retention: RetentionPolicy(onRetrieve: .seen, onDelete: .flag, moveTo: nil, flagKeyword: "$POP3Deleted"), visible: .all))
        XCTAssertEqual(config.routes.route(for: "alice@example.com"), Route(name: "default", backend: config.backend, policy: config.defaultPolicy))
        XCTAssertEqual(config.gateway.idleTimeout, .seconds(600))
        XCTAssertEqual(config.gateway.backendTimeout, .seconds(30))
        XCTAssertEqual(config.gateway.authFailureDelay, .seconds(2))
        XCTAssertEqual(config.logLevel, "info")
    }

    func testListenerDefaultsAreStartTLSWithoutPlaintextAuth() throws {
        let loaded = try ConfigLoader.parse(yaml: """
            listeners:
              - name: pop3
                address: 0.0.0.0:110
            tls: {certificate: c.pem, key: k.pem}
            backend: {address: "[2001:db8::1]:993"}
            """)
        XCTAssertEqual(loaded.config.listeners, [.init(name: "pop3", host: "0.0.0.0", port: 110, tls: .starttls, allowPlaintextAuth: false)])
        XCTAssertEqual(loaded.config.tls, .init(certificate: "c.pem", key: "k.pem"))
        XCTAssertEqual(loaded.config.backend.host, "2001:db8::1")
        XCTAssertEqual(loaded.config.backend.port, 993)
        XCTAssertEqual(loaded.warnings, [])
    }

    func testEmptySectionsMeanDefaults() throws {
        let loaded = try ConfigLoader.parse(yaml: minimal + "\nretention:\ntimeouts:\nauth:\nlog:\n")
        XCTAssertEqual(loaded.config.gateway, GatewaySettings())
        XCTAssertEqual(loaded.config.logLevel, "info")
    }

    func testBackendTLSNoneSetsPlaintextAndWarns() throws {
        let loaded = try ConfigLoader.parse(yaml: minimal + "\n  tls: none")
        XCTAssertEqual(loaded.config.backend.tls, .none)
        XCTAssertTrue(loaded.warnings.contains(ConfigProblem(
            path: "backend.tls",
            message: "none: passwords cross to the backend in clear text; use only on a trusted network or loopback",
            line: 8
        )), "\(loaded.warnings)")
    }

    func testShortIdleTimeoutIsAWarningNotAnError() throws {
        let loaded = try ConfigLoader.parse(yaml: minimal + "\ntimeouts:\n  idle: 2s\n")
        XCTAssertEqual(loaded.config.gateway.idleTimeout, .seconds(2))
        XCTAssertEqual(loaded.warnings.last?.description,
                       "timeouts.idle: 2s is below the 10m RFC 1939 §3 asks for; clients that pause between commands may be cut off (line 9)")
        let exactly = try ConfigLoader.parse(yaml: minimal + "\ntimeouts:\n  idle: 10m\n")
        XCTAssertFalse(exactly.warnings.contains { $0.path == "timeouts.idle" })
    }

    func testListenerWithoutAnyWayToLogInWarns() throws {
        let loaded = try ConfigLoader.parse(yaml: """
            listeners:
              - {name: a, address: "127.0.0.1:0", tls: none}
            backend: {address: "127.0.0.1:993"}
            """)
        XCTAssertEqual(loaded.warnings.map(\.description), [
            "listeners[0]: tls none without allow_plaintext_auth: no client can log in on this listener (line 2)",
        ])
    }

    func testUnusedTLSSectionIsAWarning() throws {
        let loaded = try ConfigLoader.parse(yaml: minimal + "\ntls:\n  certificate: a.pem\n  key: b.pem\n")
        XCTAssertEqual(loaded.config.tls, .init(certificate: "a.pem", key: "b.pem"))
        XCTAssertTrue(loaded.warnings.contains(ConfigProblem(path: "tls", message: "not used: no listener has tls starttls or implicit", line: 8)))
    }

    func testYAMLBooleanSpellingsAndQuotedStrings() throws {
        let loaded = try ConfigLoader.parse(yaml: """
            listeners:
              - name: 110
                address: '127.0.0.1:0'
                tls: "none"
                allow_plaintext_auth: on
            backend:
              address: 127.0.0.1:143
              verify_certificate: True
            mailbox: "null"
            """)
        XCTAssertEqual(loaded.config.listeners.first?.name, "110")
        XCTAssertEqual(loaded.config.listeners.first?.allowPlaintextAuth, true)
        XCTAssertTrue(loaded.config.backend.verifyCertificate)
        XCTAssertEqual(loaded.config.gateway.mailbox, "null")
    }

    func testAnchorsAndAliasesAreResolved() throws {
        let loaded = try ConfigLoader.parse(yaml: """
            listeners:
              - name: a
                address: &addr 127.0.0.1:0
                tls: none
                allow_plaintext_auth: true
              - name: b
                address: *addr
                tls: none
                allow_plaintext_auth: true
            backend: {address: "127.0.0.1:143"}
            """)
        XCTAssertEqual(loaded.config.listeners.map(\.name), ["a", "b"])
        XCTAssertEqual(loaded.config.listeners.map(\.port), [0, 0])
    }

    // MARK: Problems, one kind at a time

    func testEmptyFile() {
        for text in ["", "   \n", "# only a comment\n", "~\n"] {
            XCTAssertEqual(descriptions(text), [
                "the configuration is empty; it needs at least \"listeners\" and \"backend\" (see conf/popgate.yaml)",
            ], "\(text.debugDescription)")
        }
    }

    func testTopLevelMustBeAMapping() {
        XCTAssertEqual(descriptions("- a\n- b\n"), ["expected a mapping of settings at the top level, got a list (line 1)"])
        XCTAssertEqual(descriptions("hello\n"), ["expected a mapping of settings at the top level, got \"hello\" (line 1)"])
    }

    func testYAMLSyntaxErrorHasALine() {
        let found = problems("listeners:\n  - name: a\n   address: x\nbackend: [\n")
        XCTAssertEqual(found.count, 1)
        XCTAssertEqual(found.first?.path, "")
        XCTAssertTrue(found.first?.message.hasPrefix("YAML syntax error: ") ?? false, "\(found)")
        XCTAssertNotNil(found.first?.line)
    }

    func testDuplicateYAMLKey() {
        let found = problems(minimal + "\nmailbox: A\nmailbox: B\n")
        XCTAssertEqual(found.map(\.message), ["duplicate key \"mailbox\" in one mapping"])
    }

    func testRequiredKeysMissing() {
        XCTAssertEqual(descriptions("mailbox: INBOX\n"), [
            "listeners: required key is missing",
            "backend: required key is missing",
        ])
        XCTAssertEqual(descriptions("""
            listeners:
              - tls: none
            backend:
              tls: implicit
            """), [
            "listeners[0].name: required key is missing (line 2)",
            "listeners[0].address: required key is missing (line 2)",
            "backend.address: required key is missing (line 3)",
        ])
    }

    func testListenersShape() {
        XCTAssertEqual(descriptions("listeners: []\nbackend: {address: 'h:1'}\n"), ["listeners: at least one listener is required (line 1)"])
        XCTAssertEqual(descriptions("listeners: pop3\nbackend: {address: 'h:1'}\n"), ["listeners: expected a list of listeners, got \"pop3\" (line 1)"])
        XCTAssertEqual(descriptions("listeners:\n  - pop3\nbackend: {address: 'h:1'}\n"), ["listeners[0]: expected a mapping, got \"pop3\" (line 2)"])
    }

    func testUnknownKeysAtEveryLevel() {
        XCTAssertEqual(descriptions(minimal + """

            listener: x
            retention:
              unknown_key: 1
            """), [
            "listener: unknown key (line 8)",
            "retention.unknown_key: unknown key (line 10)",
        ])
        XCTAssertEqual(descriptions("""
            listeners:
              - name: a
                address: 127.0.0.1:0
                tls: none
                allow_plaintext_auth: true
                port: 110
            backend:
              address: h:1
              cafile: x
            """), [
            "listeners[0].port: unknown key (line 6)",
            "backend.cafile: unknown key (line 9)",
        ])
    }

    func testBadEnumValues() {
        XCTAssertEqual(descriptions("""
            listeners:
              - name: a
                address: 127.0.0.1:0
                tls: none
                allow_plaintext_auth: true
              - name: b
                address: 127.0.0.1:0
                tls: ssl
            backend:
              address: h:1
              tls: yes
            retention:
              on_retrieve: read
              on_delete: purge
            log:
              level: verbose
            """), [
            "listeners[1].tls: expected one of none, starttls, implicit, got \"ssl\" (line 8)",
            "backend.tls: expected one of none, starttls, implicit, got \"yes\" (line 11)",
            "retention.on_retrieve: expected one of seen, none, got \"read\" (line 13)",
            "retention.on_delete: expected one of expunge, move, flag, keep, got \"purge\" (line 14)",
            "log.level: expected one of trace, debug, info, notice, warning, error, critical, got \"verbose\" (line 16)",
        ])
    }

    func testWrongTypes() {
        XCTAssertEqual(descriptions("""
            listeners:
              - name: [a, b]
                address: 127.0.0.1:0
                tls: none
                allow_plaintext_auth: "true"
            backend:
              address: {host: h}
              verify_certificate: 1
            mailbox:
              - INBOX
            retention: flag
            timeouts:
              idle: {m: 10}
            """), [
            "listeners[0].name: expected a string, got a list (line 2)",
            "listeners[0].allow_plaintext_auth: expected true or false, got \"true\" (line 5)",
            "backend.address: expected a string, got a mapping (line 7)",
            "backend.verify_certificate: expected true or false, got \"1\" (line 8)",
            "mailbox: expected a string, got a list (line 10)",
            "retention: expected a mapping, got \"flag\" (line 11)",
            "timeouts.idle: expected a string, got a mapping (line 13)",
        ])
    }

    func testKeyWithoutValueIsAProblem() {
        XCTAssertEqual(descriptions(minimal + "\nmailbox:\ntimeouts:\n  idle: ~\n"), [
            "mailbox: missing value (remove the key to use the default) (line 8)",
            "timeouts.idle: missing value (remove the key to use the default) (line 10)",
        ])
        XCTAssertEqual(descriptions("listeners:\n  - name:\n    address: 127.0.0.1:1\nbackend:\n"), [
            "listeners[0].name: required key is missing (line 2)",
            "backend: required key is missing (line 4)",
        ])
    }

    func testPorts() {
        XCTAssertEqual(descriptions("""
            listeners:
              - {name: a, address: "127.0.0.1:65536", tls: none, allow_plaintext_auth: true}
              - {name: b, address: "127.0.0.1:-1", tls: none, allow_plaintext_auth: true}
              - {name: c, address: "127.0.0.1:http", tls: none, allow_plaintext_auth: true}
              - {name: d, address: "127.0.0.1:65535", tls: none, allow_plaintext_auth: true}
            backend: {address: "imap.example.net:0"}
            """), [
            "listeners[0].address: invalid address \"127.0.0.1:65536\": the port must be 0...65535 (0: any free port) (line 2)",
            "listeners[1].address: invalid address \"127.0.0.1:-1\": the port \"-1\" is not a number (line 3)",
            "listeners[2].address: invalid address \"127.0.0.1:http\": the port \"http\" is not a number (line 4)",
            "backend.address: invalid address \"imap.example.net:0\": the port must be 1...65535 (line 6)",
        ])
    }

    func testHostsAndIPv6() throws {
        XCTAssertEqual(descriptions("""
            listeners:
              - {name: a, address: ":110", tls: none, allow_plaintext_auth: true}
              - {name: b, address: "::1:110", tls: none, allow_plaintext_auth: true}
              - {name: c, address: "[::1]", tls: none, allow_plaintext_auth: true}
              - {name: d, address: "pop.example.net", tls: none, allow_plaintext_auth: true}
            backend: {address: "[::1:993"}
            """), [
            "listeners[0].address: invalid address \":110\": the host is empty (line 2)",
            "listeners[1].address: invalid address \"::1:110\": put an IPv6 address in brackets, e.g. [::1]:110 (line 3)",
            "listeners[2].address: invalid address \"[::1]\": expected host:port, e.g. [::1]:110 (line 4)",
            "listeners[3].address: invalid address \"pop.example.net\": expected host:port, e.g. 127.0.0.1:110 or [::1]:110 (line 5)",
            "backend.address: invalid address \"[::1:993\": missing \"]\" after the IPv6 address (line 6)",
        ])
        let loaded = try ConfigLoader.parse(yaml: """
            listeners:
              - {name: v6, address: "[::1]:0", tls: none, allow_plaintext_auth: true}
              - {name: v6any, address: "[::]:1995", tls: none, allow_plaintext_auth: true}
            backend: {address: "[fe80::1%eth0]:143"}
            """)
        XCTAssertEqual(loaded.config.listeners.map(\.host), ["::1", "::"])
        XCTAssertEqual(loaded.config.listeners.map(\.port), [0, 1995])
        XCTAssertEqual(loaded.config.backend.host, "fe80::1%eth0")
        XCTAssertEqual(loaded.config.backend.port, 143)
    }

    func testUnquotedIPv6AddressIsReported() {
        // `[::]:110` unquoted is YAML flow syntax, not a string.
        let found = problems("""
            listeners:
              - name: a
                address: [::]:110
            backend: {address: "h:1"}
            """)
        XCTAssertEqual(found.map(\.description), [
            "YAML syntax error: did not find expected node content (while parsing a flow node starting on line 3); "
                + "an IPv6 address must be quoted: address: \"[::]:110\" (line 3)",
        ])
    }

    func testListenerNames() {
        XCTAssertEqual(descriptions("""
            listeners:
              - {name: pop3, address: "127.0.0.1:0", tls: none, allow_plaintext_auth: true}
              - {name: pop3, address: "127.0.0.1:0", tls: none, allow_plaintext_auth: true}
              - {name: "pop 3", address: "127.0.0.1:0", tls: none, allow_plaintext_auth: true}
              - {name: "", address: "127.0.0.1:0", tls: none, allow_plaintext_auth: true}
            backend: {address: "h:1"}
            """), [
            "listeners[1].name: duplicate listener name \"pop3\" (also listeners[0]) (line 3)",
            "listeners[2].name: invalid listener name \"pop 3\": use only letters, digits, \"_\", \".\" and \"-\" (line 4)",
            "listeners[3].name: invalid listener name \"\": use only letters, digits, \"_\", \".\" and \"-\" (line 5)",
        ])
    }

    func testDuplicateListenerAddressesButPortZeroMayRepeat() throws {
        XCTAssertEqual(descriptions("""
            listeners:
              - {name: a, address: "127.0.0.1:110", tls: none, allow_plaintext_auth: true}
              - {name: b, address: "127.0.0.1:110", tls: none, allow_plaintext_auth: true}
            backend: {address: "h:1"}
            """), ["listeners[1].address: the same address as listeners[0] (line 3)"])
        XCTAssertNoThrow(try ConfigLoader.parse(yaml: """
            listeners:
              - {name: a, address: "127.0.0.1:0", tls: none, allow_plaintext_auth: true}
              - {name: b, address: "127.0.0.1:0", tls: none, allow_plaintext_auth: true}
              - {name: c, address: "127.0.0.2:110", tls: none, allow_plaintext_auth: true}
              - {name: d, address: "127.0.0.1:110", tls: none, allow_plaintext_auth: true}
            backend: {address: "h:1"}
            """))
    }

    func testTLSSectionRequiredWhenAListenerUsesTLS() {
        XCTAssertEqual(descriptions("""
            listeners:
              - {name: plain, address: "127.0.0.1:0", tls: none, allow_plaintext_auth: true}
              - {name: secure, address: "127.0.0.1:0", tls: implicit}
            backend: {address: "h:1"}
            """), ["tls: required because listener \"secure\" has tls implicit"])
        XCTAssertEqual(descriptions("""
            listeners:
              - {name: p, address: "127.0.0.1:0"}
            tls:
              certificate: ""
            backend: {address: "h:1"}
            """), [
            "tls.key: required key is missing (line 3)",
            "tls.certificate: must not be empty (line 4)",
        ])
    }

    func testUIDLFormatErrorsCarryTheParserText() {
        for (format, reason) in [
            ("%08Xv", UIDLFormat.ParseError.noUID),
            ("%8Xu", .spacePadding),
            ("%u %v", .invalidCharacter),
            ("%u%", .danglingPercent),
            ("%u%m", .unsupportedVariable("m")),
        ] {
            XCTAssertEqual(descriptions(minimal + "\nuidl_format: \"\(format)\"\n"),
                           ["uidl_format: invalid UIDL format \"\(format)\": \(reason) (line 8)"])
        }
    }

    func testUIDLPresetsAndSource() throws {
        let loaded = try ConfigLoader.parse(yaml: minimal + "\nuidl_format: uw-imap\nuidl_source: header\n")
        XCTAssertEqual(loaded.config.gateway.uidlFormat.description, "%08Xv%08Xu")
        XCTAssertEqual(loaded.config.gateway.uidlFormat.preset, .uwIMAP)
        XCTAssertEqual(loaded.config.gateway.uidlSource, .header)
        XCTAssertEqual(try ConfigLoader.parse(yaml: minimal).config.gateway.uidlSource, .imap)
        XCTAssertEqual(descriptions(minimal + "\nuidl_format: courier-v2\n"), [
            "uidl_format: invalid UIDL format \"courier-v2\": preset courier-v2 cannot be reproduced over IMAP: "
                + UIDLFormat.Preset.courierV2.refusal! + " (line 8)",
        ])
        XCTAssertEqual(descriptions(minimal + "\nuidl_source: x-uidl\n"), ["uidl_source: expected one of imap, header, got \"x-uidl\" (line 8)"])
    }

    func testFlagKeywordMustBeAnIMAPAtom() throws {
        for keyword in ["\\Deleted", "$POP3 Deleted", "(x)", "a{1}", "100%", "a*", "say\"hi\"", "a]", "$Pöp", "tab\tx"] {
            let found = problems(minimal + "\nretention:\n  flag_keyword: '\(keyword)'\n")
            XCTAssertEqual(found.map(\.path), ["retention.flag_keyword"], keyword)
            XCTAssertEqual(found.first?.line, 9, keyword)
        }
        XCTAssertEqual(descriptions(minimal + "\nretention:\n  flag_keyword: '\\Seen'\n"),
                       ["retention.flag_keyword: invalid IMAP keyword \"\\Seen\": a keyword, not a system flag like \\Deleted (line 9)"])
        XCTAssertEqual(descriptions(minimal + "\nretention:\n  flag_keyword: '$A B'\n"),
                       ["retention.flag_keyword: invalid IMAP keyword \"$A B\": only printable ASCII without spaces is allowed (line 9)"])
        for keyword in ["$POP3Deleted", "Junk", "$Label1", "a.b-c_d+e/f:g"] {
            let loaded = try ConfigLoader.parse(yaml: minimal + "\nretention:\n  flag_keyword: '\(keyword)'\n")
            XCTAssertEqual(loaded.config.defaultPolicy.retention.flagKeyword, keyword)
        }
    }

    func testMailboxNames() {
        XCTAssertEqual(descriptions(minimal + "\nmailbox: ''\nretention:\n  move_to: \"\"\n"), [
            "mailbox: must not be empty (line 8)",
            "retention.move_to: must not be empty (line 10)",
        ])
        XCTAssertEqual(descriptions(minimal + "\nmailbox: \"a\\tb\"\n"), ["mailbox: must not contain control characters (line 8)"])
    }

    func testMoveToAutoIsTheDefaultAndAnyOtherNameIsExact() throws {
        XCTAssertNil(try ConfigLoader.parse(yaml: minimal).config.defaultPolicy.retention.moveTo)
        XCTAssertNil(try ConfigLoader.parse(yaml: minimal + "\nretention:\n  on_delete: move\n  move_to: auto\n").config.defaultPolicy.retention.moveTo)
        XCTAssertEqual(try ConfigLoader.parse(yaml: minimal + "\nretention:\n  on_delete: move\n  move_to: INBOX.Trash\n").config.defaultPolicy.retention.moveTo, "INBOX.Trash")
        XCTAssertEqual(try ConfigLoader.parse(yaml: minimal + "\nretention:\n  on_delete: move\n  move_to: Auto\n").config.defaultPolicy.retention.moveTo, "Auto")
    }

    func testMoveToMustDifferFromMailbox() throws {
        XCTAssertEqual(descriptions(minimal + "\nmailbox: inbox\nretention:\n  on_delete: move\n  move_to: INBOX\n"),
                       ["retention.move_to: must differ from mailbox \"inbox\", or deleted messages would never leave it (line 11)"])
        // Only matters when messages are moved.
        XCTAssertNoThrow(try ConfigLoader.parse(yaml: minimal + "\nretention:\n  on_delete: flag\n  move_to: INBOX\n"))
    }

    func testDurationsProblems() {
        XCTAssertEqual(descriptions(minimal + """

            timeouts:
              idle: ten
              backend: 0
            auth:
              failure_delay: -1s
            """), [
            "timeouts.idle: invalid duration \"ten\" (expected a whole number and a unit: 500ms, 30s, 10m, 1h) (line 9)",
            "timeouts.backend: must be greater than 0 (line 10)",
            "auth.failure_delay: invalid duration \"-1s\" (expected a whole number and a unit: 500ms, 30s, 10m, 1h) (line 12)",
        ])
        XCTAssertEqual(descriptions(minimal + "\ntimeouts:\n  idle: 600\n  backend: 25h\n"), [
            "timeouts.idle: invalid duration \"600\" (expected a whole number and a unit: 500ms, 30s, 10m, 1h) (line 9)",
            "timeouts.backend: 25h is too long (at most 24h) (line 10)",
        ])
    }

    func testFailureDelayMayBeZero() throws {
        for zero in ["0", "0s", "0ms"] {
            let loaded = try ConfigLoader.parse(yaml: minimal + "\nauth:\n  failure_delay: \(zero)\n")
            XCTAssertEqual(loaded.config.gateway.authFailureDelay, .zero, zero)
        }
    }

    func testManyProblemsAreAllReportedInFileOrder() {
        let found = problems("""
            listeners:
              - name: bad name
                address: nowhere
                tls: ssl
            backend:
              address: imap.example.net
              tls: tls
              verify_certificate: maybe
            uidl_format: "%v"
            retention:
              on_delete: purge
              flag_keyword: "\\\\Deleted"
              surprise: 1
            timeouts:
              idle: ten
            auth:
              failure_delay: 2 s
            log:
              level: loud
            colour: blue
            """)
        XCTAssertEqual(found.map(\.path), [
            "listeners[0].name", "listeners[0].address", "listeners[0].tls",
            "backend.address", "backend.tls", "backend.verify_certificate",
            "uidl_format",
            "retention.on_delete", "retention.flag_keyword", "retention.surprise",
            "timeouts.idle", "auth.failure_delay", "log.level", "colour",
        ])
        XCTAssertEqual(found.map(\.line), [2, 3, 4, 6, 7, 8, 9, 11, 12, 13, 15, 17, 19, 20])
    }

    // MARK: ConfigError text

    func testErrorDescriptionIsOneLinePerProblem() {
        do {
            _ = try ConfigLoader.parse(yaml: minimal + "\nretention:\n  unknown_key: 1\nlog:\n  level: loud\n", file: "/etc/popgate/popgate.yaml")
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error.file, "/etc/popgate/popgate.yaml")
            XCTAssertEqual(error.description, """
                /etc/popgate/popgate.yaml: retention.unknown_key: unknown key (line 9)
                /etc/popgate/popgate.yaml: log.level: expected one of trace, debug, info, notice, warning, error, critical, got "loud" (line 11)
                """)
        }
    }

    func testDefaultFileName() {
        do {
            _ = try ConfigLoader.parse(yaml: "")
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error.file, "<string>")
        }
    }

    // MARK: load(path:)

    private func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("popgate-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    private func write(_ text: String, to url: URL) throws {
        try Data(text.utf8).write(to: url)
    }

    private let tlsConfig = """
        listeners:
          - {name: pop3, address: "127.0.0.1:0", tls: starttls}
        tls:
          certificate: tls/cert.pem
          key: @KEY@
        backend:
          address: 127.0.0.1:993
          ca_file: @CA@
        """

    func testLoadChecksFilesAndResolvesRelativePaths() throws {
        let directory = try temporaryDirectory()
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("tls"), withIntermediateDirectories: true)
        try write("cert", to: directory.appendingPathComponent("tls/cert.pem"))
        try write("key", to: directory.appendingPathComponent("key.pem"))
        try write("ca", to: directory.appendingPathComponent("ca.pem"))
        let keyPath = directory.appendingPathComponent("key.pem").path
        let configPath = directory.appendingPathComponent("popgate.yaml").path
        try write(tlsConfig.replacingOccurrences(of: "@KEY@", with: keyPath).replacingOccurrences(of: "@CA@", with: "ca.pem"), to: URL(fileURLWithPath: configPath))

        let loaded = try ConfigLoader.load(path: configPath)
        XCTAssertEqual(loaded.config.tls, .init(certificate: directory.path + "/tls/cert.pem", key: keyPath))
        XCTAssertEqual(loaded.config.backend.caFile, directory.path + "/ca.pem")
        XCTAssertEqual(loaded.warnings, [])
    }

    func testLoadReportsMissingFilesOnTheirKeys() throws {
        let directory = try temporaryDirectory()
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("adir"), withIntermediateDirectories: true)
        let configPath = directory.appendingPathComponent("popgate.yaml").path
        try write(tlsConfig.replacingOccurrences(of: "@KEY@", with: "/nonexistent/popgate/key.pem").replacingOccurrences(of: "@CA@", with: "adir"),
                  to: URL(fileURLWithPath: configPath))
        do {
            _ = try ConfigLoader.load(path: configPath)
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error.file, configPath)
            XCTAssertEqual(error.problems.map(\.description), [
                "tls.certificate: \"tls/cert.pem\" (\(directory.path)/tls/cert.pem): no such file (line 4)",
                "tls.key: \"/nonexistent/popgate/key.pem\": no such file (line 5)",
                "backend.ca_file: \"adir\" (\(directory.path)/adir): is a directory, not a file (line 8)",
            ])
        }
    }

    func testLoadMergesFileProblemsWithOtherProblems() throws {
        let directory = try temporaryDirectory()
        let configPath = directory.appendingPathComponent("popgate.yaml").path
        try write(tlsConfig.replacingOccurrences(of: "@KEY@", with: "k.pem").replacingOccurrences(of: "@CA@", with: "ca.pem") + "\nlog: {level: loud}\n",
                  to: URL(fileURLWithPath: configPath))
        do {
            _ = try ConfigLoader.load(path: configPath)
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error.problems.map(\.path), ["tls.certificate", "tls.key", "backend.ca_file", "log.level"])
        }
    }

    func testLoadOfAMissingOrUnreadableConfigFile() throws {
        do {
            _ = try ConfigLoader.load(path: "/nonexistent/popgate.yaml")
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error.description, "/nonexistent/popgate.yaml: cannot read the file: no such file")
        }
        let directory = try temporaryDirectory()
        let binary = directory.appendingPathComponent("binary.yaml")
        try Data([0x6C, 0x6F, 0x67, 0x3A, 0xFF, 0xFE, 0x0A]).write(to: binary)
        do {
            _ = try ConfigLoader.load(path: binary.path)
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error.problems, [ConfigProblem(path: "", message: "cannot read the file: not UTF-8 text")])
        }
    }

    // MARK: The shipped example

    func testShippedExampleParses() throws {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("conf/popgate.yaml")
        let text = try String(contentsOf: url, encoding: .utf8)
        let loaded = try ConfigLoader.parse(yaml: text, file: url.path)
        XCTAssertEqual(loaded.warnings, [])
        let config = loaded.config
        XCTAssertEqual(config.listeners, [
            .init(name: "pop3", host: "0.0.0.0", port: 110, tls: .starttls, allowPlaintextAuth: false),
            .init(name: "pop3s", host: "0.0.0.0", port: 995, tls: .implicit, allowPlaintextAuth: false),
        ])
        XCTAssertEqual(config.tls, .init(certificate: "/etc/popgate/tls/fullchain.pem", key: "/etc/popgate/tls/privkey.pem"))
        XCTAssertEqual(config.backend, .init(host: "imap.example.net", port: 993, tls: .implicit, caFile: "/etc/ssl/certs/ca-certificates.crt",
                                             serverName: "imap.example.net", verifyCertificate: true))
        // The example spells out every default.
        XCTAssertEqual(config.gateway, GatewaySettings())
        XCTAssertEqual(config.clientLimits, PopGateConfig.ClientLimits())
        XCTAssertEqual(config.logLevel, "info")
        XCTAssertNil(config.metrics, "metrics are off unless configured")
        // Every key the loader knows appears in the example.
        for key in ConfigValidator.rootKeys + ConfigValidator.listenerKeys + ConfigValidator.tlsKeys + ConfigValidator.backendKeys
            + ConfigValidator.retentionKeys + ConfigValidator.timeoutKeys + ConfigValidator.authKeys + ConfigValidator.limitKeys
            + ConfigValidator.logKeys + ConfigValidator.policyKeys + ConfigValidator.routeKeys
            + ConfigValidator.authHTTPKeys + ConfigValidator.metricsKeys {
            XCTAssertTrue(text.contains("\(key):"), key)
        }
    }

    // MARK: Front door: limits, login and flush timeouts, penalty, client forwarding

    func testFrontDoorKeysAreRead() throws {
        let config = try ConfigLoader.parse(yaml: minimal + "\n" + """
            timeouts:
              login: 20s
              flush: 3s
            auth:
              failure_delay: 1s
              failure_delay_max: 8s
              penalty_expiry: 10m
            limits:
              connections: 500
              connections_per_ip: 7
              tracked_ips: 1000
              max_auth_failures: 2
              max_messages: 5000
              output_buffer: 65536

            """).config
        XCTAssertEqual(config.gateway.loginTimeout, .seconds(20))
        XCTAssertEqual(config.gateway.limits.maxAuthFailures, 2)
        XCTAssertEqual(config.gateway.limits.maxMessages, 5000)
        XCTAssertTrue(config.backend.forwardClient)
        XCTAssertEqual(config.clientLimits, PopGateConfig.ClientLimits(
            connections: 500, connectionsPerIP: 7, trackedIPs: 1000, outputBuffer: 65536,
            flushTimeout: .seconds(3), failureDelayMax: .seconds(8), penaltyExpiry: .seconds(600)))
    }

    func testForwardClientCanBeTurnedOff() throws {
        let yaml = minimal + "\n  forward_client: false\n"
        XCTAssertFalse(try ConfigLoader.parse(yaml: yaml).config.backend.forwardClient)
    }

    func testBadFrontDoorValuesNameTheirKeys() {
        let yaml = minimal + "\n" + """
            timeouts:
              login: 0s
              flush: soon
            auth:
              failure_delay: 5s
              failure_delay_max: 2s
            limits:
              connections: 0
              connections_per_ip: "many"
              tracked_ips: -5
              output_buffer: 100
              max_messages: 1.5
              unknown_limit: 3

            """
        do {
            let text = descriptions(yaml).joined(separator: "\n")
            for key in ["timeouts.login", "timeouts.flush", "auth.failure_delay_max", "limits.connections", "limits.connections_per_ip",
                        "limits.tracked_ips", "limits.output_buffer", "limits.max_messages", "limits.unknown_limit"] {
                XCTAssertTrue(text.contains(key), "\(key) missing from: \(text)")
            }
        }
    }

    func testExpungeFallbackMustNotMoveIntoTheMaildrop() {
        let yaml = minimal + "\nretention:\n  on_delete: expunge\n  move_to: INBOX\n"
        XCTAssertTrue(descriptions(yaml).contains { $0.contains("retention.move_to") && $0.contains("UIDPLUS") }, "\(descriptions(yaml))")
    }
}
