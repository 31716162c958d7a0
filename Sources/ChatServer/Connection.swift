// Connection: one client socket and its input framing; the chat state lives in its `Session`.

import ChatCore
import ChatSys

final class Connection {
    let fd: Int32
    /// Distinguishes this connection from an earlier one on the same fd number (see `Server.token`).
    let generation: UInt32
    let peer: SocketAddress
    /// The network the peer is counted under by per-address limits (see `SocketAddress.networkKey`), fixed at accept.
    var network = AddressKey.unknown
    let session: Session
    var framer: LineFramer
    /// Monotonic time of the last input line, for the idle timeout.
    var lastInput: UInt64
    /// When a write first returned EAGAIN with output pending, since the last byte the socket accepted (0: not blocked).
    var blockedSince: UInt64 = 0
    /// Queued on the loop's still-readable list (its read budget ran out before EAGAIN).
    var isOnReadyList = false
    /// Closed (fd not yet released; that happens after the current batch of events).
    var isClosed = false
    /// Our side is shut down and we are waiting for the client's EOF (or `lingerDeadline`).
    var isLingering = false
    var lingerDeadline: UInt64 = 0
    /// The last write stopped inside a line (the rest of it waits in the session's output).
    var wireEndsMidLine = false
    /// The client has shut down its sending side (read returned 0).
    var sawEndOfInput = false
    /// Monotonic time of the last flush attempt, for the flush interval.
    var lastFlushAt: UInt64 = 0
    /// Waiting in the server's deferred list for its flush interval to pass.
    var isFlushDeferred = false
    /// Input is not processed (nor the socket read) while the client's own replies pile up: see "Input pause"
    /// in Server. `heldInput` keeps the unprocessed rest of the last read (at most `read-budget-bytes`).
    var isInputPaused = false
    var heldInput = ByteQueue()
    /// Input budget (`input-bytes-per-second`): bytes the client may still send now, refilled with time.
    /// A Double, because refills between two reads can be fractions of a byte.
    var inputTokens: Double
    var inputRefilledAt: UInt64
    /// Spent its input budget: not read until the tick has refilled it (on the server's throttled list).
    var isThrottled = false
    /// The framer's `partialSerial` when this connection's current partial line began, and when (line-timeout).
    var partialSerial: UInt64 = 0
    var partialSince: UInt64 = 0

    init(fd: Int32, generation: UInt32, peer: SocketAddress, session: Session, maxLineBytes: Int, inputBurstBytes: Int, now: UInt64) {
        self.inputTokens = Double(inputBurstBytes)
        self.inputRefilledAt = now
        self.fd = fd
        self.generation = generation
        self.peer = peer
        self.session = session
        self.framer = LineFramer(maxLineBytes: maxLineBytes)
        self.lastInput = now
    }
}
