// swift-tools-version: 6.0
// chatd: an epoll, edge-triggered chat daemon with ring-buffer fan-out.
import PackageDescription

let package = Package(
    name: "chatd",
    products: [
        .executable(name: "chatd", targets: ["chatd"]),
        .executable(name: "chat", targets: ["chat"]),
        .executable(name: "chat-loadgen", targets: ["chat-loadgen"]),
        .library(name: "ChatCore", targets: ["ChatCore"]),
        .library(name: "ChatSys", targets: ["ChatSys"]),
        .library(name: "ChatServer", targets: ["ChatServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // The C shim: the only place that includes kernel and libsystemd headers.
        .target(
            name: "CChatSys",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("systemd")]
        ),
        // The one thin Swift layer over the shim: typed syscall wrappers, addresses, the epoll loop, sd_notify.
        // Shared by the daemon, the client and the load generator, so each syscall is wrapped once.
        .target(name: "ChatSys", dependencies: ["CChatSys"]),
        // Pure chat state: framing, names, rooms, rings, limits, the hub and its typed events. No syscalls, no
        // protocol text.
        .target(name: "ChatCore"),
        // The wire protocols ("fronts"), pure: each parses its input into hub operations and renders the hub's
        // events and replies. Native/ is chatd's line protocol, IRC/ the IRC front.
        .target(name: "ChatFronts", dependencies: ["ChatCore"]),
        // The engine: connections, the server loop, timers, signals, config, logging.
        .target(
            name: "ChatServer",
            dependencies: [
                "ChatSys", "ChatCore", "ChatFronts",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "chatd",
            dependencies: [
                "ChatServer", "ChatSys",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The terminal client's logic: line editor, display widths, line classification, the client loop.
        .target(name: "ChatClient", dependencies: ["ChatSys", "ChatCore", "ChatFronts"]),
        // The interactive terminal client.
        .executableTarget(
            name: "chat",
            dependencies: [
                "ChatClient", "ChatSys", "ChatCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The load generator's pure receive side: finding message tokens and line kinds (ready, Online:,
        // Missed: N, ERR) in the bytes a server sends, on which every loss count rests. No syscalls (ChatSys for
        // memchr only).
        .target(name: "LoadGenCore", dependencies: ["ChatSys"]),
        // The load generator: thousands of clients, latency histograms, JSON results.
        .executableTarget(
            name: "chat-loadgen",
            dependencies: [
                "ChatSys", "ChatCore", "ChatFronts", "LoadGenCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        // What the test targets share: the in-process TestServer, built-product paths, clock, waits, seeded random.
        .target(name: "ChatTestSupport", dependencies: ["ChatServer", "ChatSys"], path: "Tests/ChatTestSupport"),
        .testTarget(name: "ChatCoreTests", dependencies: ["ChatCore", "ChatFronts", "ChatTestSupport"]),
        .testTarget(name: "LoadGenCoreTests", dependencies: ["LoadGenCore", "ChatFronts", "ChatTestSupport"]),
        .testTarget(
            name: "ChatClientTests",
            dependencies: ["ChatClient", "ChatServer", "ChatSys", "ChatCore", "ChatTestSupport", "chat"]
        ),
        .testTarget(
            name: "ChatServerTests",
            dependencies: ["ChatServer", "ChatSys", "ChatCore", "ChatTestSupport", "chatd"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
