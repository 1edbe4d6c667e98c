/// Finding one byte in a buffer, eight bytes at a time, for the data path of the pure protocol modules
/// (line ends in message bodies and response lines). Plain Swift, so POP3 and IMAP import no C module.
public enum ByteSearch {
    /// The index of the first `byte` in `buffer[from...]`, or nil.
    @inlinable
    public static func firstIndex(of byte: UInt8, in buffer: UnsafeBufferPointer<UInt8>, from: Int = 0) -> Int? {
        guard let base = buffer.baseAddress, from < buffer.count else { return nil }
        let raw = UnsafeRawPointer(base)
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let pattern = ones &* UInt64(byte)
        var index = from
        // Word at a time: a byte of `word ^ pattern` is zero where `byte` is; the classic test for a zero
        // byte (`(x - ones) & ~x & highs`) is exact for the lowest one, which is all we look at.
        while index + 8 <= buffer.count {
            let word = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)) ^ pattern
            let zeros = (word &- ones) & ~word & highs
            if zeros != 0 { return index + zeros.trailingZeroBitCount / 8 }
            index += 8
        }
        while index < buffer.count {
            if buffer[index] == byte { return index }
            index += 1
        }
        return nil
    }
}
