// ScreenRows: how a line is laid out on the terminal's rows. The client breaks long lines itself and starts
// every row after the first with an indent, so that column 0 of a row only ever holds the start of a line the
// client made: a message padded until the terminal would wrap `-- #lobby Offline: alice (quit)` onto a row of
// its own shows that text indented, as the continuation of the message it is. The terminal's own wrapping is
// switched off while a line is written (see `Client.show`), so a width this file gets wrong (a character the
// terminal draws wider than `DisplayWidth` says) clips a row instead of starting an unmarked one.

public enum ScreenRows {
    /// What starts every continuation row.
    public static let indent = "  "

    /// Splits `text` into the rows to draw in `columns` cells, the first row starting `used` cells in (after a
    /// timestamp, say), every further row after `indent` (which the rows returned do not include). Breaks fall
    /// between characters (grapheme clusters); a character never straddles two rows; every row holds at least
    /// one character, however narrow the terminal.
    public static func wrap(_ text: String, columns: Int, used: Int = 0) -> [String] {
        var rows: [String] = []
        var row = ""
        var width = 0
        var available = max(1, columns - used)
        for character in text {
            let cells = DisplayWidth.of(character)
            if width + cells > available && !row.isEmpty {
                rows.append(row)
                row = ""
                width = 0
                available = max(1, columns - indent.count)
            }
            row.append(character)
            width += cells
        }
        rows.append(row)
        return rows
    }
}
