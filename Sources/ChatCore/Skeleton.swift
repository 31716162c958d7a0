// Skeleton: the UTS #39 "skeleton" of a string, by which look-alike names are recognised, and the NFD
// normalisation it is built on. Swift's standard library has no public NFD (String compares by canonical
// equivalence internally but does not expose the decomposition), and ChatCore takes no Foundation, so
// both come from tables generated from Unicode's data by scripts/gen-confusables.py.
//
// Names are checked on every name attempt, which an unnamed client may repeat as fast as it can send
// lines, so this stays cheap: code points are plain UInt32 in arrays, the common ranges (ASCII, Latin-1,
// CJK ideographs, Hangul) skip the table searches and the standard library's property lookups, and the
// result is built as UTF-8 bytes.

public enum Skeleton {
    /// skeleton(X) per UTS #39 section 4: NFD, drop default-ignorable code points (as recent revisions of
    /// UTS #39 do, so that an invisible mark cannot make two skeletons differ), replace each code point
    /// by its prototype from confusables.txt, NFD again. Two strings are confusable when their skeletons
    /// are equal. Meant for names (at most `Names.maxBytes`): the work is linear in the length, apart
    /// from reordering runs of combining marks, which `Names.validate` bounds.
    public static func of(_ text: String) -> String {
        var mapped: [UInt32] = []
        mapped.reserveCapacity(text.utf8.count)
        for value in nfdValues(text.unicodeScalars) {
            if isDefaultIgnorable(value) { continue }
            if let targets = prototype(value) {
                mapped.append(contentsOf: targets)
            } else {
                mapped.append(value)
            }
        }
        return string(nfdValues(mapped))
    }

    /// NFD (UAX #15): every code point replaced by its full canonical decomposition, then each run of
    /// combining marks put in canonical order (a stable sort by canonical combining class).
    public static func nfd<S: Sequence>(_ scalars: S) -> [Unicode.Scalar] where S.Element == Unicode.Scalar {
        nfdValues(scalars.lazy.map(\.value)).map { Unicode.Scalar($0)! }
    }

    /// NFD of a string, as a string (same `==` as the input: Swift compares by canonical equivalence).
    public static func nfd(_ text: String) -> String {
        string(nfdValues(text.unicodeScalars))
    }

    static func nfdValues(_ scalars: String.UnicodeScalarView) -> [UInt32] {
        nfdValues(scalars.lazy.map(\.value))
    }

    static func nfdValues<S: Sequence>(_ values: S) -> [UInt32] where S.Element == UInt32 {
        var out: [UInt32] = []
        out.reserveCapacity(values.underestimatedCount)
        var ordered = true
        for v in values {
            if v < 0xC0 {
                // ASCII and the rest of Latin-1 below À: no decompositions, class 0.
                out.append(v)
                continue
            }
            if v >= hangulBase && v < hangulBase + hangulCount {
                // Hangul syllables decompose by arithmetic (Unicode 3.12): L V, or L V T.
                let index = v - hangulBase
                out.append(leadingBase + index / (vowelCount * trailingCount))
                out.append(vowelBase + (index % (vowelCount * trailingCount)) / trailingCount)
                let trailing = index % trailingCount
                if trailing != 0 { out.append(trailingBase + trailing) }
            } else if isStarterOnlyBlock(v) {
                out.append(v)
            } else if let targets = lookup(v, DecompositionTable.sources, DecompositionTable.ends, DecompositionTable.targets) {
                out.append(contentsOf: targets)
                ordered = false
            } else {
                out.append(v)
                if combiningClass(v) != 0 { ordered = false }
            }
        }
        if ordered { return out }
        // Canonical ordering: insertion sort, moving a mark left past marks of a higher class only, so
        // marks of equal class keep their order and starters (class 0) never move.
        var i = 1
        while i < out.count {
            let cls = combiningClass(out[i])
            if cls != 0 {
                var j = i
                while j > 0 && combiningClass(out[j - 1]) > cls {
                    out.swapAt(j - 1, j)
                    j -= 1
                }
            }
            i += 1
        }
        return out
    }

    /// Canonical combining class; the standard library is asked only outside the ranges known to hold
    /// starters only (below U+0300, CJK ideographs, Hangul jamo and syllables).
    static func combiningClass(_ v: UInt32) -> UInt8 {
        if v < 0x300 || isStarterOnlyBlock(v) { return 0 }
        guard let scalar = Unicode.Scalar(v) else { return 0 }
        return scalar.properties.canonicalCombiningClass.rawValue
    }

    /// Default_Ignorable_Code_Point, asked of the standard library only above U+00AD (the first one).
    static func isDefaultIgnorable(_ v: UInt32) -> Bool {
        if v < 0xAD || isStarterOnlyBlock(v) { return false }
        guard let scalar = Unicode.Scalar(v) else { return false }
        return scalar.properties.isDefaultIgnorableCodePoint
    }

    /// Blocks with neither marks nor decompositions nor default-ignorables: CJK ideographs (extension A
    /// and the unified block), Hangul syllables and the conjoining jamo other than the two fillers.
    private static func isStarterOnlyBlock(_ v: UInt32) -> Bool {
        switch v {
        case 0x1100...0x115E, 0x1161...0x11FF, 0x3400...0x4DBF, 0x4E00...0x9FFF, 0xAC00...0xD7A3: return true
        default: return false
        }
    }

    /// The confusables prototype of `v`, or nil if it is its own. ASCII, the commonest case, is answered
    /// from a 128-entry index instead of the binary search.
    static func prototype(_ v: UInt32) -> ArraySlice<UInt32>? {
        if v < 0x80 {
            let i = asciiIndex[Int(v)]
            if i < 0 { return nil }
            let start = i == 0 ? 0 : Int(ConfusablesTable.ends[i - 1])
            return ConfusablesTable.targets[start..<Int(ConfusablesTable.ends[i])]
        }
        return lookup(v, ConfusablesTable.sources, ConfusablesTable.ends, ConfusablesTable.targets)
    }

    /// For each ASCII code point, its index in `ConfusablesTable.sources`, or -1.
    private static let asciiIndex: [Int] = {
        var index = [Int](repeating: -1, count: 128)
        for (i, source) in ConfusablesTable.sources.enumerated() where source < 0x80 { index[Int(source)] = i }
        return index
    }()

    /// UTF-8 of a list of scalar values (all valid: they come from a String or from Unicode's tables).
    private static func string(_ values: [UInt32]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(values.count * 2)
        for v in values {
            switch v {
            case 0..<0x80:
                bytes.append(UInt8(v))
            case 0x80..<0x800:
                bytes.append(UInt8(0xC0 | (v >> 6)))
                bytes.append(UInt8(0x80 | (v & 0x3F)))
            case 0x800..<0x10000:
                bytes.append(UInt8(0xE0 | (v >> 12)))
                bytes.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
                bytes.append(UInt8(0x80 | (v & 0x3F)))
            default:
                bytes.append(UInt8(0xF0 | (v >> 18)))
                bytes.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
                bytes.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
                bytes.append(UInt8(0x80 | (v & 0x3F)))
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static let hangulBase: UInt32 = 0xAC00
    private static let leadingBase: UInt32 = 0x1100
    private static let vowelBase: UInt32 = 0x1161
    private static let trailingBase: UInt32 = 0x11A7
    private static let vowelCount: UInt32 = 21
    private static let trailingCount: UInt32 = 28
    private static let hangulCount: UInt32 = 19 * 21 * 28

    /// The mapping of `value` in a generated table (sorted `sources`; `ends[i]` is where the targets of
    /// `sources[i]` end in `targets`), or nil if it has none.
    static func lookup(_ value: UInt32, _ sources: [UInt32], _ ends: [UInt16], _ targets: [UInt32]) -> ArraySlice<UInt32>? {
        var low = 0
        var high = sources.count
        while low < high {
            let mid = low + (high - low) / 2
            if sources[mid] < value { low = mid + 1 } else { high = mid }
        }
        guard low < sources.count, sources[low] == value else { return nil }
        let start = low == 0 ? 0 : Int(ends[low - 1])
        return targets[start..<Int(ends[low])]
    }
}
