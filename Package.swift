// swift-tools-version:6.0
import PackageDescription

// Layering (imports point down or sideways, never up):
//   pure:  Wire ← POP3, IMAP ← Gateway,  FrontDoor   (no Foundation, no Dispatch, no C)
//   edge:  COpenSSL ← TLS,  Transport,  CSystemd ← Systemd   (TLS and Transport do not know each other)
//   glue:  Config (YAML → validated values),  Server (the one session driver)
//   app:   popgate (command line, logging bootstrap, daemon lifecycle; OpenSSL only through TLS)
let package = Package(
    name: "PopGate",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "popgate", targets: ["popgate"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // Pure protocol code.
        .target(name: "Wire"),
        .target(name: "POP3", dependencies: ["Wire"]),
        .target(name: "IMAP", dependencies: ["Wire"]),
        .target(name: "Gateway", dependencies: ["Wire", "POP3", "IMAP"]),
        // Per-client connection limits, login penalty and refusal-log throttling (time passed in, stdlib only).
        .target(name: "FrontDoor"),

        // Edges.
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .target(name: "TLS", dependencies: ["COpenSSL"]),
        .target(name: "Transport"),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .target(name: "Systemd", dependencies: ["CSystemd", .product(name: "Logging", package: "swift-log")]),

        // Glue.
        .target(name: "Config", dependencies: ["Gateway", .product(name: "Yams", package: "Yams")]),
        .target(name: "Server", dependencies: [
            "Gateway", "POP3", "FrontDoor", "TLS", "Transport", "Config",
            .product(name: "Logging", package: "swift-log"),
        ]),

        // The executable.
        .executableTarget(name: "popgate", dependencies: [
            "Server", "Config", "Gateway", "Systemd", "TLS", "Transport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        .testTarget(name: "WireTests", dependencies: ["Wire"]),
        .testTarget(name: "POP3Tests", dependencies: ["POP3"]),
        .testTarget(name: "IMAPTests", dependencies: ["IMAP"]),
        .testTarget(name: "GatewayTests", dependencies: ["Gateway", "POP3", "IMAP", "Wire"]),
        .testTarget(name: "FrontDoorTests", dependencies: ["FrontDoor"]),
        .testTarget(name: "TLSTests", dependencies: ["TLS"]),
        .testTarget(name: "TransportTests", dependencies: ["Transport"]),
        .testTarget(name: "ConfigTests", dependencies: ["Config"]),
        .testTarget(name: "SystemdTests", dependencies: ["Systemd", .product(name: "Logging", package: "swift-log")]),
    ],
    swiftLanguageModes: [.v6]
)

// libFuzzer targets (Tests/Fuzz/README.md): declared only when POPGATE_FUZZ is set (`make fuzz`), so a
// plain `swift build`/`swift test` never sees them.
if Context.environment["POPGATE_FUZZ"] != nil {
    package.targets += [.target(name: "FuzzSupport", path: "Tests/Fuzz/FuzzSupport"), .target(name: "FuzzMain", path: "Tests/Fuzz/FuzzMain")]
    for (name, module) in [("FuzzSession", "Gateway"), ("FuzzIMAPParser", "IMAP"), ("FuzzDotStuffer", "POP3"),
                           ("FuzzSASL", "POP3"), ("FuzzConfig", "Config")] {
        package.targets.append(.executableTarget(name: name, dependencies: ["FuzzSupport", "FuzzMain", .target(name: module)], path: "Tests/Fuzz/\(name)"))
    }
}
