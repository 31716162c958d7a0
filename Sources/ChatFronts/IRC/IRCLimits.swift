// IRCLimits: the sizes the IRC wire format fixes. They are the protocol's, not settings: a client relies on
// them (RFC 1459 §2.3, IRCv3 message-tags "Size limit"), so none of them is configurable.

public enum IRCLimits {
    /// The most bytes of a line apart from its tags: prefix, command and parameters, CR LF included.
    public static let maxLineBytes = 512
    /// `maxLineBytes` without the CR LF: what the parser allows after the tag section, whether the framer
    /// found `\r\n` or a bare `\n` (the terminator counts against the limit either way, as in Ergo).
    public static let maxBodyBytes = maxLineBytes - 2
    /// The most bytes of the tag section, from `@` to the space after the tags, both included.
    public static let maxTagSectionBytes = 8191
    /// The most tag data (between `@` and the space) a client may send. IRCv3 splits the section in two
    /// halves of 4094 bytes, one for the client's tags and one for the tags servers add, so a client that
    /// sends more can never be relayed whole; irctest's `testLengthLimits` expects 417 at 4095.
    public static let maxClientTagDataBytes = 4094
    /// The most tag data in a line a server sends (`maxTagSectionBytes` without `@` and the space).
    public static let maxTagDataBytes = maxTagSectionBytes - 2
    /// The most parameters of a message. RFC 2812 §2.3.1: after 14 middle parameters, the 15th is the rest of
    /// the line, spaces included, with or without a leading `:`.
    public static let maxParameters = 15
}
