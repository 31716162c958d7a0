// swift-tools-version: 6.0
// chatd: an epoll, edge-triggered chat daemon with ring-buffer fan-out.
import PackageDescription

let package = Package(
    name: "chatd",
    products: [
        .executable(name: "chatd", targets: ["chatd"]),
        .library(name: "ChatCore", targets: ["ChatCore"]),
        .library(name: "ChatServer", targets: ["ChatServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // The C shim: the only place that includes kernel and libsystemd headers.
        .target(
            name: "CChatSys",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("systemd")]
        ),
        // Pure chat logic: framing, names, commands, rendering, rooms, rings. No syscalls.
        .target(name: "ChatCore"),
        // The engine: event loop, sockets, timers, signals, systemd.
        .target(
            name: "ChatServer",
            dependencies: [
                "CChatSys", "ChatCore",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "chatd",
            dependencies: [
                "ChatServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "ChatCoreTests", dependencies: ["ChatCore"]),
        .testTarget(
            name: "ChatServerTests",
            dependencies: ["ChatServer", "ChatCore", "chatd"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
