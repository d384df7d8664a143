/// Why a byte buffer from the host or the kernel could not be decoded.
///
/// Decoders throw these; they never trap on bad input. Each case says which structure
/// (named after the kernel struct it mirrors) and which field was at fault.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The buffer is shorter than the structure needs.
    case truncated(structure: String, needed: Int, got: Int)
    /// The buffer is longer than the structure allows.
    case oversized(structure: String, limit: Int, got: Int)
    /// An operation or type code the protocol does not define.
    case unknownCode(structure: String, field: String, value: UInt32)
    /// A field holds a value outside its allowed range or format.
    case invalidField(structure: String, field: String, reason: String)

    public var description: String {
        switch self {
        case .truncated(let s, let needed, let got):
            return "\(s): truncated message (\(got) bytes, need \(needed))"
        case .oversized(let s, let limit, let got):
            return "\(s): oversized message (\(got) bytes, at most \(limit))"
        case .unknownCode(let s, let field, let value):
            return "\(s): unknown \(field) \(value)"
        case .invalidField(let s, let field, let reason):
            return "\(s).\(field): \(reason)"
        }
    }
}
