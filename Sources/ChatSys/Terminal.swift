// Terminal: terminal modes and size for the interactive client, and restoring them on a crash.

import CChatSys
import Glibc

/// A terminal's modes (termios), saved and put back by the client.
public typealias TerminalAttributes = termios

extension Sys {
    @inline(never)
    public static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

    @inline(never)
    public static func terminalAttributes(_ fd: Int32) throws(SysError) -> termios {
        var attributes = termios()
        _ = try attempt("tcgetattr") { Int(tcgetattr(fd, &attributes)) }
        return attributes
    }

    /// Applies `attributes` once pending output is written (TCSADRAIN), keeping typed-ahead input.
    @inline(never)
    public static func setTerminalAttributes(_ fd: Int32, _ attributes: termios) throws(SysError) {
        var attributes = attributes
        _ = try attempt("tcsetattr") { Int(tcsetattr(fd, TCSADRAIN, &attributes)) }
    }

    /// `attributes` turned into raw input for a line editor: bytes arrive one read at a time, unechoed,
    /// with Ctrl-C/Ctrl-Z/Ctrl-S as plain bytes. Output processing (`\n` → `\r\n`) stays on.
    public static func rawInputAttributes(from attributes: termios) -> termios {
        var raw = attributes
        raw.c_iflag &= ~tcflag_t(BRKINT | ICRNL | INPCK | ISTRIP | IXON)
        raw.c_cflag |= tcflag_t(CS8)
        raw.c_lflag &= ~tcflag_t(ECHO | ICANON | IEXTEN | ISIG)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        return raw
    }

    /// The terminal's width in columns, or nil if `fd` is not a terminal or reports none.
    @inline(never)
    public static func terminalColumns(_ fd: Int32) -> Int? {
        var size = winsize()
        guard ioctl(fd, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return nil }
        return Int(size.ws_col)
    }

    /// Arms a fatal-signal handler (SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGABRT, SIGFPE) that puts `attributes`
    /// back on `fd` before the process dies, so a crash never leaves the shell in raw mode.
    public static func restoreTerminalOnFatalSignals(_ fd: Int32, _ attributes: termios) {
        var attributes = attributes
        CChatSys_restore_terminal_on_fatal_signals(fd, &attributes)
    }
}
