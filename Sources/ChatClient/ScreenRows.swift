// ScreenRows: how a line is laid out on the terminal's rows. The client breaks long lines itself and starts
// every row after the first with an indent, so that column 0 of a row only ever holds the start of a line the
// client made: a message padded until the terminal would wrap `-- #lobby Offline: alice (quit)` onto a row of
// its own shows that text indented, as the continuation of the message it is. The terminal's own wrapping is
// switched off while a line is written (see `Client.rowsText`), so a width this file gets wrong (a character
// the terminal draws wider than `DisplayWidth` says) can never start an unmarked row; the last column is left
// free so that such an error costs nothing either, instead of clipping the row's last character.

public enum ScreenRows {
    /// What starts every continuation row.
    public static let indent = "  "
    /// Tab stops every 8 columns, as terminals set them by default.
    static let tabWidth = 8

    /// Splits `text` into the rows to draw in `columns` cells, the first row starting `used` cells in (after a
    /// timestamp, say), every further row after `indent` (which the rows returned do not include). Breaks fall
    /// between characters (grapheme clusters); a character never straddles two rows; every row holds at least
    /// one character, however narrow the terminal. Tabs are expanded to spaces up to the next tab stop, so
    /// that the row's width is known.
    public static func wrap(_ text: String, columns: Int, used: Int = 0) -> [String] {
        let usable = columns - 1
        var rows: [String] = []
        var row = ""
        var width = 0
        var start = used
        var available = max(1, usable - used)
        func breakRow() {
            rows.append(row)
            row = ""
            width = 0
            start = indent.count
            available = max(1, usable - indent.count)
        }
        for character in text {
            if character == "\t" {
                // Up to the next tab stop, but never past the row's end: a tab does not wrap in a terminal.
                if width >= available { breakRow() }
                let spaces = min(tabWidth - (start + width) % tabWidth, available - width)
                row += String(repeating: " ", count: spaces)
                width += spaces
                continue
            }
            let cells = DisplayWidth.of(character)
            if width + cells > available && !row.isEmpty { breakRow() }
            row.append(character)
            width += cells
        }
        rows.append(row)
        return rows
    }
}
