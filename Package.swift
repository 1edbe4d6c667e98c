// swift-tools-version:6.0
import PackageDescription

// Layering (imports point down or sideways, never up):
//   pure:  Wire ← POP3, IMAP ← Gateway ← Routing,  Wire ← FrontDoor, ProxyProtocol   (no Foundation, no Dispatch, no C)
//          ScrapeHTTP (the metrics endpoint's HTTP request handling)
//   edge:  COpenSSL ← TLS,  Wire ← Transport,  CSystemd ← Systemd   (TLS and Transport do not know each other)
//   glue:  Config (YAML → validated values),  Server (the one session driver, metrics)
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
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // Pure protocol code.
        .target(name: "Wire"),
        .target(name: "POP3", dependencies: ["Wire"]),
        .target(name: "IMAP", dependencies: ["Wire"]),
        .target(name: "Gateway", dependencies: ["Wire", "POP3", "IMAP"]),
        // Static routing: which backend and policy a login gets (stdlib only).
        .target(name: "Routing", dependencies: ["Wire", "Gateway"]),
        // Per-client connection limits, login penalty and refusal-log throttling (time passed in, stdlib only).
        .target(name: "FrontDoor", dependencies: ["Wire"]),
        // PROXY protocol v1/v2 header parser (HAProxy's spec): bytes in, header or error out.
        .target(name: "ProxyProtocol", dependencies: ["Wire"]),
        // The metrics endpoint's HTTP/1.x request handling, with its caps (stdlib only).
        .target(name: "ScrapeHTTP"),

        // Edges.
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .target(name: "TLS", dependencies: ["COpenSSL"]),
        .target(name: "Transport", dependencies: ["Wire"]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .target(name: "Systemd", dependencies: ["CSystemd", .product(name: "Logging", package: "swift-log")]),

        // Glue.
        .target(name: "Config", dependencies: ["Gateway", "IMAP", "Routing", "Wire", .product(name: "Yams", package: "Yams")]),
        .target(name: "Server", dependencies: [
            "Gateway", "POP3", "IMAP", "FrontDoor", "ProxyProtocol", "Routing", "TLS", "Transport", "Config", "Wire", "ScrapeHTTP",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),

        // The executable.
        .executableTarget(name: "popgate", dependencies: [
            "Server", "Config", "Gateway", "Systemd", "TLS", "Transport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
        ]),

        .testTarget(name: "WireTests", dependencies: ["Wire"]),
        .testTarget(name: "POP3Tests", dependencies: ["POP3"]),
        .testTarget(name: "IMAPTests", dependencies: ["IMAP"]),
        .testTarget(name: "GatewayTests", dependencies: ["Gateway", "POP3", "IMAP", "Wire"]),
        .testTarget(name: "FrontDoorTests", dependencies: ["FrontDoor", "Wire"]),
        .testTarget(name: "ProxyProtocolTests", dependencies: ["ProxyProtocol", "Wire"]),
        .testTarget(name: "RoutingTests", dependencies: ["Routing", "Gateway", "Wire"]),
        .testTarget(name: "ScrapeHTTPTests", dependencies: ["ScrapeHTTP"]),
        .testTarget(name: "TLSTests", dependencies: ["TLS"]),
        .testTarget(name: "TransportTests", dependencies: ["Transport"]),
        .testTarget(name: "ConfigTests", dependencies: ["Config", "Gateway", "Routing"]),
        .testTarget(name: "SystemdTests", dependencies: ["Systemd", .product(name: "Logging", package: "swift-log")]),
    ],
    swiftLanguageModes: [.v6]
)

// Benchmarks with their own executable (Tests/bench): declared only when POPGATE_BENCH is set (`make bench-routes`).
if Context.environment["POPGATE_BENCH"] != nil {
    package.targets.append(.executableTarget(name: "RouteBench", dependencies: ["Routing", "Gateway"], path: "Tests/bench/RouteBench"))
}

// libFuzzer targets (Tests/Fuzz/README.md): declared only when POPGATE_FUZZ is set (`make fuzz`), so a
// plain `swift build`/`swift test` never sees them.
if Context.environment["POPGATE_FUZZ"] != nil {
    package.targets += [.target(name: "FuzzSupport", path: "Tests/Fuzz/FuzzSupport"), .target(name: "FuzzMain", path: "Tests/Fuzz/FuzzMain")]
    for (name, module) in [("FuzzSession", "Gateway"), ("FuzzIMAPParser", "IMAP"), ("FuzzDotStuffer", "POP3"),
                           ("FuzzSASL", "POP3"), ("FuzzConfig", "Config"), ("FuzzProxyHeader", "ProxyProtocol")] {
        package.targets.append(.executableTarget(name: name, dependencies: ["FuzzSupport", "FuzzMain", .target(name: module)], path: "Tests/Fuzz/\(name)"))
    }
}
