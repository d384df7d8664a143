import HVServiceKit
import Logging

/// How a log entry becomes journal fields or a stderr line (pure; no I/O).
public enum LogEntryFormat {
    /// Fields the handlers set themselves; metadata keys with these names are not sent as
    /// fields (they would forge or duplicate them) but appended to the message.
    public static let reservedFieldNames: Set<String> = [
        "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "CODE_FILE", "CODE_LINE", "CODE_FUNC",
    ]

    /// The syslog priority journald stores in `PRIORITY` (0 emerg … 7 debug).
    public static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    /// True for a name journald accepts from a client: 1–64 of `A–Z 0–9 _`, not starting with
    /// `_` (trusted fields are journald's own) nor with a digit.
    public static func isJournalFieldName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= 64 else { return false }
        guard first != UInt8(ascii: "_"), !(first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")) else { return false }
        return bytes.allSatisfy {
            ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "_")
        }
    }

    /// A metadata value as text (strings bare, collections as swift-log prints them).
    public static func text(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let s): return s
        case .stringConvertible(let c): return c.description
        default: return value.description
        }
    }

    /// The fields of one journal entry: `MESSAGE`, `PRIORITY`, `SYSLOG_IDENTIFIER`,
    /// `CODE_FILE`/`CODE_LINE`/`CODE_FUNC`, then every metadata key that is a valid, unreserved
    /// field name (sorted). Other metadata is appended to the message as ` key=value`.
    /// Values keep their newlines: the journal stores them intact.
    public static func journalFields(
        level: Logger.Level, message: String, metadata: Logger.Metadata, identifier: String,
        file: String, function: String, line: UInt
    ) -> [String] {
        var extra: [String] = []
        var text = message
        for key in metadata.keys.sorted() {
            guard let value = metadata[key] else { continue }
            if isJournalFieldName(key) && !reservedFieldNames.contains(key) {
                extra.append(key + "=" + self.text(value))
            } else {
                text += " " + key + "=" + self.text(value)
            }
        }
        return [
            "MESSAGE=" + text,
            "PRIORITY=" + String(syslogPriority(level)),
            "SYSLOG_IDENTIFIER=" + identifier,
            "CODE_FILE=" + file,
            "CODE_LINE=" + String(line),
            "CODE_FUNC=" + function,
        ] + extra
    }

    /// One stderr line (with the trailing newline): `[timestamp ]<level> [HV_SERVICE] message
    /// KEY=value …`, metadata sorted by key. Newlines inside are shown as `\n` so that every
    /// entry stays on one line.
    public static func stderrLine(level: Logger.Level, message: String, metadata: Logger.Metadata, timestamp: String?) -> String {
        var line = timestamp.map { $0 + " " } ?? ""
        line += level.rawValue
        if let service = metadata[LogField.service] { line += " [" + text(service) + "]" }
        line += " " + message
        for key in metadata.keys.sorted() where key != LogField.service {
            if let value = metadata[key] { line += " " + key + "=" + text(value) }
        }
        return escapeLineBreaks(line) + "\n"
    }

    private static func escapeLineBreaks(_ s: String) -> String {
        guard s.contains(where: \.isNewline) else { return s }
        var out = ""
        for c in s {
            switch c {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\r\n": out += "\\r\\n"
            default: if c.isNewline { out += " " } else { out.append(c) }
            }
        }
        return out
    }

    /// The handler's metadata, then the metadata provider's, then the call's (later wins), plus
    /// the event's error as `error=…`.
    static func mergedMetadata(handler: Logger.Metadata, provider: Logger.MetadataProvider?, event: LogEvent) -> Logger.Metadata {
        var merged = handler
        if let provided = provider?.get() { merged.merge(provided) { _, new in new } }
        if let call = event.metadata { merged.merge(call) { _, new in new } }
        if let error = event.error, merged["error"] == nil { merged["error"] = .string(String(describing: error)) }
        return merged
    }
}
