// IRCBytes: what the IRC writer accepts as a piece of a line (strings, byte arrays, raw buffers), and the
// byte-level helpers the IRC files share.

/// A value whose UTF-8 bytes can be lent out as one contiguous buffer, without copying for the common types.
public protocol IRCBytes {
    func withIRCBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}

extension String: IRCBytes {
    public func withIRCBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        // Native Swift strings are contiguous UTF-8 already: `withUTF8` copies only a bridged or lazy one.
        var copy = self
        return try copy.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
    }
}

extension Substring: IRCBytes {
    public func withIRCBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var copy = self
        return try copy.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
    }
}

extension StaticString: IRCBytes {
    public func withIRCBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        precondition(hasPointerRepresentation, "a single-scalar StaticString has no UTF-8 buffer")
        return try body(UnsafeRawBufferPointer(start: utf8Start, count: utf8CodeUnitCount))
    }
}

extension Array: IRCBytes where Element == UInt8 {
    public func withIRCBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeBytes(body)
    }
}

extension ArraySlice: IRCBytes where Element == UInt8 {
    public func withIRCBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeBytes(body)
    }
}

extension UnsafeRawBufferPointer: IRCBytes {
    public func withIRCBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(self)
    }
}

enum ASCII {
    static let nul: UInt8 = 0x00
    static let lineFeed: UInt8 = 0x0A
    static let carriageReturn: UInt8 = 0x0D
    static let space: UInt8 = 0x20
    static let bang: UInt8 = 0x21
    static let hash: UInt8 = 0x23
    static let plus: UInt8 = 0x2B
    static let comma: UInt8 = 0x2C
    static let equals: UInt8 = 0x3D
    static let colon: UInt8 = 0x3A
    static let semicolon: UInt8 = 0x3B
    static let at: UInt8 = 0x40
    static let backslash: UInt8 = 0x5C

    @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b &- 0x30 < 10 }
    @inline(__always) static func isLetter(_ b: UInt8) -> Bool { (b | 0x20) &- 0x61 < 26 }
    @inline(__always) static func isHexDigit(_ b: UInt8) -> Bool { isDigit(b) || (b | 0x20) &- 0x61 < 6 }
}

enum UTF8Bytes {
    /// Whether `bytes` are well-formed UTF-8 (no overlong forms, surrogates, or code points above U+10FFFF).
    static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        let n = bytes.count
        while i < n {
            let b0 = bytes[i]
            if b0 < 0x80 { i += 1; continue }
            let length: Int
            var lowest: UInt8 = 0x80
            var highest: UInt8 = 0xBF
            switch b0 {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; lowest = 0xA0
            case 0xE1...0xEC, 0xEE, 0xEF: length = 3
            case 0xED: length = 3; highest = 0x9F
            case 0xF0: length = 4; lowest = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; highest = 0x8F
            default: return false
            }
            guard i + length <= n else { return false }
            let b1 = bytes[i + 1]
            guard b1 >= lowest && b1 <= highest else { return false }
            for k in 2..<max(2, length) where bytes[i + k] & 0xC0 != 0x80 { return false }
            i += length
        }
        return true
    }

    /// Whether a code point starts at `index` (`index == bytes.count` counts as a boundary).
    @inline(__always)
    static func isBoundary(_ bytes: UnsafeRawBufferPointer, _ index: Int) -> Bool {
        index >= bytes.count || bytes[index] & 0xC0 != 0x80
    }

    /// The scalar that starts at `index`, or nil if the bytes there are not a well-formed sequence.
    static func scalar(in bytes: UnsafeRawBufferPointer, at index: Int) -> (scalar: Unicode.Scalar, length: Int)? {
        let b0 = bytes[index]
        if b0 < 0x80 { return (Unicode.Scalar(b0), 1) }
        let length: Int
        var value: UInt32
        switch b0 {
        case 0xC2...0xDF: length = 2; value = UInt32(b0 & 0x1F)
        case 0xE0...0xEF: length = 3; value = UInt32(b0 & 0x0F)
        case 0xF0...0xF4: length = 4; value = UInt32(b0 & 0x07)
        default: return nil
        }
        guard index + length <= bytes.count else { return nil }
        for k in 1..<length {
            let b = bytes[index + k]
            guard b & 0xC0 == 0x80 else { return nil }
            value = value << 6 | UInt32(b & 0x3F)
        }
        guard let scalar = Unicode.Scalar(value), UTF8.width(scalar) == length else { return nil }
        return (scalar, length)
    }

    /// Where the code point that contains `index` starts (`index` itself if it is a boundary), looking back at
    /// most 3 bytes.
    static func boundary(atOrBefore index: Int, in bytes: UnsafeRawBufferPointer, notBefore floor: Int) -> Int {
        var i = index
        while i > floor && i > index - 3 && !isBoundary(bytes, i) { i -= 1 }
        return i
    }
}
