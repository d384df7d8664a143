extension StringProtocol {
    /// Whether `needle` occurs in this text, comparing UTF-8 bytes (for the ASCII markers the
    /// services look for). Not the standard `contains(_:)` for strings: that one lives in
    /// _StringProcessing, and calling it links that module and its regex parser into hvguestd
    /// (2.2 MB of binary, ≈ 0.3 MiB of resident memory at start; bench/RESULTS.md).
    public func containsText(_ needle: String) -> Bool {
        let n = Array(needle.utf8)
        func search(_ h: UnsafeBufferPointer<UInt8>) -> Bool {
            guard !n.isEmpty else { return true }
            guard h.count >= n.count else { return false }
            for start in 0...(h.count - n.count) where h[start] == n[0] {
                if h[start..<(start + n.count)].elementsEqual(n) { return true }
            }
            return false
        }
        if let found = utf8.withContiguousStorageIfAvailable(search) { return found }
        return Array(utf8).withUnsafeBufferPointer(search)
    }
}
