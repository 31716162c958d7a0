// The layering rules of the source tree (issue 10, "every syscall through ChatSys"), checked on the files
// themselves: outside Sources/ChatSys and Sources/CChatSys no file imports the C library, Foundation or the
// shim, and none reads errno (a SysError answers isWouldBlock, isConnectionReset, ... instead).

import Foundation
import XCTest

/// One broken rule: where, and what.
struct SourceRuleViolation: Equatable, CustomStringConvertible {
    let file: String
    let line: Int
    let text: String
    var description: String { "\(file):\(line): \(text)" }
}

enum SourceRules {
    /// Modules only ChatSys may import: the C library (under any platform's name), Foundation, the shim.
    static let systemModules: Set<String> = ["Glibc", "Musl", "Darwin", "Foundation", "FoundationEssentials", "CChatSys"]

    /// Directories under Sources/ whose files may talk to the system.
    static let systemLayers: Set<String> = ["ChatSys", "CChatSys"]

    /// The module an `import` line names, or nil for any other line. Understands attributes
    /// (`@preconcurrency import`, `@_exported import`), access levels (`public import`) and declaration imports
    /// (`import func Glibc.write`).
    static func importedModule(_ line: Substring) -> String? {
        var words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })[...]
        while let first = words.first, first.hasPrefix("@") { words = words.dropFirst() }
        if let first = words.first, ["public", "package", "internal", "fileprivate", "private"].contains(first) {
            words = words.dropFirst()
        }
        guard words.first == "import" else { return nil }
        words = words.dropFirst()
        let kinds: Set<Substring> = ["typealias", "struct", "class", "enum", "protocol", "let", "var", "func"]
        if let kind = words.first, kinds.contains(kind) { words = words.dropFirst() }
        guard let path = words.first else { return nil }
        return String(path.split(separator: ".").first ?? path)
    }

    /// Whether `line` uses the identifier `errno` (as a whole word; comments count too, so that no one is told
    /// to reach for it).
    static func mentionsErrno(_ line: Substring) -> Bool {
        var rest = line[...]
        while let range = rest.range(of: "errno") {
            let before = range.lowerBound == line.startIndex ? nil : line[line.index(before: range.lowerBound)]
            let after = range.upperBound == line.endIndex ? nil : line[range.upperBound]
            func isWordCharacter(_ c: Character?) -> Bool { c.map { $0.isLetter || $0.isNumber || $0 == "_" } ?? false }
            if !isWordCharacter(before) && !isWordCharacter(after) { return true }
            rest = line[range.upperBound...]
        }
        return false
    }

    /// The rules applied to one file's text.
    static func violations(in text: String, file: String) -> [SourceRuleViolation] {
        var found: [SourceRuleViolation] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if let module = importedModule(line), systemModules.contains(module) {
                found.append(SourceRuleViolation(file: file, line: index + 1, text: "imports \(module) outside ChatSys"))
            }
            if mentionsErrno(line) {
                found.append(SourceRuleViolation(file: file, line: index + 1, text: "uses errno outside ChatSys"))
            }
        }
        return found
    }

    /// The package's Sources directory, found from this file's own path.
    static var sourcesDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources")
    }

    /// Every .swift file under Sources/, as a path relative to it (`ChatServer/Server.swift`).
    static func swiftFiles() throws -> [String] {
        let root = sourcesDirectory.path
        let paths = try FileManager.default.subpathsOfDirectory(atPath: root)
        return paths.filter { $0.hasSuffix(".swift") }.sorted()
    }
}

final class SourceRulesTests: XCTestCase {
    func testNoFileOutsideChatSysImportsTheSystemOrReadsErrno() throws {
        let files = try SourceRules.swiftFiles()
        // The walk found the tree (an empty list would pass vacuously).
        XCTAssertTrue(files.contains("ChatServer/Server.swift"), "Sources not found at \(SourceRules.sourcesDirectory.path)")
        XCTAssertTrue(files.contains("chat-loadgen/Worker.swift"))
        var checked = 0
        var violations: [SourceRuleViolation] = []
        for file in files {
            let layer = String(file.split(separator: "/").first ?? "")
            if SourceRules.systemLayers.contains(layer) { continue }
            let text = try String(contentsOfFile: SourceRules.sourcesDirectory.appendingPathComponent(file).path, encoding: .utf8)
            violations += SourceRules.violations(in: text, file: file)
            checked += 1
        }
        XCTAssertGreaterThan(checked, 40)
        XCTAssertEqual(violations, [], "\n" + violations.map(\.description).joined(separator: "\n"))
    }

    /// ChatSys is where the system is, so the same walk over it must find imports: the rule sees what it looks for.
    func testTheRuleFindsTheImportsOfChatSysItself() throws {
        let files = try SourceRules.swiftFiles().filter { $0.hasPrefix("ChatSys/") }
        var modules: Set<String> = []
        var errnoLines = 0
        for file in files {
            let text = try String(contentsOfFile: SourceRules.sourcesDirectory.appendingPathComponent(file).path, encoding: .utf8)
            for line in text.split(separator: "\n") {
                if let module = SourceRules.importedModule(line) { modules.insert(module) }
                if SourceRules.mentionsErrno(line) { errnoLines += 1 }
            }
        }
        XCTAssertTrue(modules.isSuperset(of: ["Glibc", "CChatSys"]), "\(modules)")
        XCTAssertGreaterThan(errnoLines, 0)
    }

    func testImportLinesAreRecognisedInEveryForm() {
        let flagged = ["import Glibc", "  import Foundation", "@preconcurrency import Glibc", "@_exported import CChatSys",
                       "public import Foundation", "import func Glibc.write", "import struct Foundation.URL",
                       "import Darwin", "import FoundationEssentials", "import Musl", "import Glibc // for write(2)"]
        for line in flagged {
            XCTAssertEqual(SourceRules.violations(in: line, file: "x.swift").count, 1, line)
        }
        let allowed = ["import ChatSys", "import ChatCore", "// import Glibc is not allowed here", "let importGlibc = 1",
                       "import GlibcLike", "import FoundationModels2", "    /// imports Foundation: no"]
        for line in allowed {
            XCTAssertEqual(SourceRules.violations(in: line, file: "x.swift"), [], line)
        }
    }

    func testErrnoIsFoundAsAWordAnywhereOnALine() {
        for line in ["let code = errno", "if errno == EINTR {", "error.errno == ECONNRESET", "// read errno here", "(errno)"] {
            XCTAssertTrue(SourceRules.mentionsErrno(line[...]), line)
        }
        for line in ["let errnoValue = 1", "myerrno", "ERRNO", "let e = code"] {
            XCTAssertFalse(SourceRules.mentionsErrno(line[...]), line)
        }
        let violations = SourceRules.violations(in: "import ChatSys\nlet a = 1\nprint(errno)\n", file: "y.swift")
        XCTAssertEqual(violations, [SourceRuleViolation(file: "y.swift", line: 3, text: "uses errno outside ChatSys")])
    }
}
