// Skeleton: the UTS #39 "skeleton" of a string, by which look-alike names are recognised, and the NFD
// normalisation it is built on. Swift's standard library has no public NFD (String compares by canonical
// equivalence internally but does not expose the decomposition), and ChatCore takes no Foundation, so
// both come from tables generated from Unicode's data by scripts/gen-confusables.py.

public enum Skeleton {
    /// skeleton(X) per UTS #39 section 4: NFD, drop default-ignorable code points (as recent revisions of
    /// UTS #39 do, so that an invisible mark cannot make two skeletons differ), replace each code point
    /// by its prototype from confusables.txt, NFD again. Two strings are confusable when their skeletons
    /// are equal. Meant for names (at most `Names.maxBytes`): the work is linear in the length, apart
    /// from reordering runs of combining marks, which `Names.validate` bounds.
    public static func of(_ text: String) -> String {
        var mapped: [Unicode.Scalar] = []
        for scalar in nfd(text.unicodeScalars) {
            if scalar.properties.isDefaultIgnorableCodePoint { continue }
            if let targets = lookup(scalar.value, ConfusablesTable.sources, ConfusablesTable.ends, ConfusablesTable.targets) {
                for value in targets { mapped.append(Unicode.Scalar(value)!) }
            } else {
                mapped.append(scalar)
            }
        }
        var result = String.UnicodeScalarView()
        result.append(contentsOf: nfd(mapped))
        return String(result)
    }

    /// NFD (UAX #15): every code point replaced by its full canonical decomposition, then each run of
    /// combining marks put in canonical order (a stable sort by canonical combining class).
    public static func nfd<S: Sequence>(_ scalars: S) -> [Unicode.Scalar] where S.Element == Unicode.Scalar {
        var out: [Unicode.Scalar] = []
        for scalar in scalars {
            let v = scalar.value
            if v >= hangulBase && v < hangulBase + hangulCount {
                // Hangul syllables decompose by arithmetic (Unicode 3.12): L V, or L V T.
                let index = v - hangulBase
                out.append(Unicode.Scalar(leadingBase + index / (vowelCount * trailingCount))!)
                out.append(Unicode.Scalar(vowelBase + (index % (vowelCount * trailingCount)) / trailingCount)!)
                let trailing = index % trailingCount
                if trailing != 0 { out.append(Unicode.Scalar(trailingBase + trailing)!) }
            } else if let targets = lookup(v, DecompositionTable.sources, DecompositionTable.ends, DecompositionTable.targets) {
                for value in targets { out.append(Unicode.Scalar(value)!) }
            } else {
                out.append(scalar)
            }
        }
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

    /// NFD of a string, as a string (same `==` as the input: Swift compares by canonical equivalence).
    public static func nfd(_ text: String) -> String {
        var result = String.UnicodeScalarView()
        result.append(contentsOf: nfd(text.unicodeScalars))
        return String(result)
    }

    private static func combiningClass(_ scalar: Unicode.Scalar) -> UInt8 {
        scalar.properties.canonicalCombiningClass.rawValue
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
