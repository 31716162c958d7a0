// LineEditor: the state of the line being typed (grapheme clusters and a cursor between them) and
// what each key does to it, with a history. No terminal here: `InputLine.render` turns the state into
// what to draw, and the client writes it.

public struct LineEditor: Sendable {
    /// What a key did.
    public enum Outcome: Equatable, Sendable {
        /// The line or cursor may have changed: redraw the input line.
        case edited
        /// Enter: the finished line (already cleared from the editor and added to the history).
        case submit(String)
        /// Ctrl-D on an empty line.
        case endOfInput
        /// Ctrl-C.
        case interrupt
        /// Ctrl-L: clear the screen and redraw.
        case redrawScreen
    }

    /// The line as grapheme clusters; the cursor sits before `characters[cursor]`.
    public private(set) var characters: [Character] = []
    public private(set) var cursor = 0
    public private(set) var history: [String] = []
    public let historyLimit: Int
    /// The history entry shown, or nil while editing a fresh line.
    private var historyIndex: Int?
    /// The fresh line put aside while browsing the history.
    private var draft: [Character] = []

    public init(historyLimit: Int = 500) {
        self.historyLimit = historyLimit
    }

    public var text: String { String(characters) }

    public mutating func apply(_ key: Key) -> Outcome {
        switch key {
        case .text(let text):
            insert(text)
        case .enter:
            let line = text
            if !line.isEmpty && history.last != line {
                history.append(line)
                if history.count > historyLimit { history.removeFirst(history.count - historyLimit) }
            }
            characters = []
            cursor = 0
            historyIndex = nil
            draft = []
            return .submit(line)
        case .backspace:
            if cursor > 0 {
                characters.remove(at: cursor - 1)
                cursor -= 1
            }
        case .delete:
            if cursor < characters.count { characters.remove(at: cursor) }
        case .endOfInput:
            if characters.isEmpty { return .endOfInput }
            if cursor < characters.count { characters.remove(at: cursor) }
        case .interrupt:
            return .interrupt
        case .redraw:
            return .redrawScreen
        case .left:
            cursor = max(0, cursor - 1)
        case .right:
            cursor = min(characters.count, cursor + 1)
        case .home:
            cursor = 0
        case .end:
            cursor = characters.count
        case .wordLeft:
            cursor = wordStart(before: cursor)
        case .wordRight:
            var i = cursor
            while i < characters.count && characters[i].isWhitespace { i += 1 }
            while i < characters.count && !characters[i].isWhitespace { i += 1 }
            cursor = i
        case .killToStart:
            characters.removeSubrange(0..<cursor)
            cursor = 0
        case .killToEnd:
            characters.removeSubrange(cursor...)
        case .deleteWordBackward:
            let start = wordStart(before: cursor)
            characters.removeSubrange(start..<cursor)
            cursor = start
        case .up:
            showHistory(historyIndex.map { $0 - 1 } ?? history.count - 1)
        case .down:
            if let index = historyIndex { showHistory(index + 1) }
        case .ignored:
            break
        }
        return .edited
    }

    /// Inserts typed or pasted text at the cursor. Controls are dropped (the server refuses them anyway);
    /// a pasted U+2028/U+2029 (a line break to some programs, refused by the server) becomes a space, as the
    /// line being edited is one line; a combining mark typed after a letter joins that letter's grapheme cluster.
    public mutating func insert(_ text: String) {
        let clean = text.unicodeScalars.filter { scalar in
            let v = scalar.value
            return !(v < 0x20 || (v >= 0x7F && v < 0xA0))
        }.map { scalar -> Unicode.Scalar in
            scalar.value == 0x2028 || scalar.value == 0x2029 ? " " : scalar
        }
        guard !clean.isEmpty else { return }
        var before = String(characters[..<cursor])
        before.unicodeScalars.append(contentsOf: clean)
        let after = String(characters[cursor...])
        let beforeCharacters = Array(before)
        characters = Array(before + after)
        // Re-segmenting can merge across the boundary (a mark before existing text); keep the cursor in range.
        cursor = min(beforeCharacters.count, characters.count)
    }

    /// Replaces the whole line (for tests and for restoring input after a reconnect).
    public mutating func setText(_ text: String) {
        characters = Array(text)
        cursor = characters.count
    }

    private func wordStart(before position: Int) -> Int {
        var i = position
        while i > 0 && characters[i - 1].isWhitespace { i -= 1 }
        while i > 0 && !characters[i - 1].isWhitespace { i -= 1 }
        return i
    }

    private mutating func showHistory(_ index: Int) {
        guard !history.isEmpty, index >= 0 else { return }
        if historyIndex == nil { draft = characters }
        if index >= history.count {
            historyIndex = nil
            characters = draft
        } else {
            historyIndex = index
            characters = Array(history[index])
        }
        cursor = characters.count
    }
}

/// What to draw for the input line: the prompt, then a window of the line that fits the terminal's width
/// (the line scrolls sideways instead of wrapping, so redrawing it is always one row).
public struct InputLine: Equatable, Sendable {
    /// The part of the typed line to show after the prompt.
    public let visible: String
    /// Cells from the left edge to the cursor, prompt included.
    public let cursorColumn: Int

    /// Lays out `characters` after a prompt `promptWidth` cells wide in `columns` cells. The last column is
    /// left free so that the terminal never enters its pending-wrap state on the input row.
    public static func render(promptWidth: Int, characters: [Character], cursor: Int, columns: Int) -> InputLine {
        let available = max(1, columns - promptWidth - 1)
        let widths = characters.map(DisplayWidth.of)
        // Start at the beginning if the cursor fits; otherwise scroll so the cursor sits at the right edge.
        var start = 0
        var cursorOffset = widths[..<cursor].reduce(0, +)
        while cursorOffset > available - 1 && start < cursor {
            cursorOffset -= widths[start]
            start += 1
        }
        var end = start
        var used = 0
        while end < characters.count && used + widths[end] <= available {
            used += widths[end]
            end += 1
        }
        return InputLine(visible: String(characters[start..<end]), cursorColumn: promptWidth + cursorOffset)
    }
}
