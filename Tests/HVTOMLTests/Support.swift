import HVTOML
import Testing

func parse(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> TOMLDocument {
    do {
        return try TOMLDocument(parsing: text)
    } catch {
        Issue.record("\(text.debugDescription) failed: \(error)", sourceLocation: sourceLocation)
        throw error
    }
}

/// The root table of `text`, or an empty table after recording the failure.
func root(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> TOMLTable {
    (try? parse(text, sourceLocation: sourceLocation))?.root ?? [:]
}

/// The error `text` gives; records an issue when it parses.
func failure(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> TOMLError? {
    failure(Array(text.utf8), shown: text.debugDescription, sourceLocation: sourceLocation)
}

func failure(_ bytes: [UInt8], shown: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) -> TOMLError? {
    do {
        let doc = try TOMLDocument(parsing: bytes)
        Issue.record("\(shown ?? "\(bytes)") was accepted: \(doc.root)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

/// Checks that `text` is refused at `line`:`column` with a message containing `message`.
func expectFailure(_ text: String, line: Int, column: Int? = nil, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard let e = failure(text, sourceLocation: sourceLocation) else { return }
    #expect(e.line == line, "\(text.debugDescription): \(e)", sourceLocation: sourceLocation)
    if let column { #expect(e.column == column, "\(text.debugDescription): \(e)", sourceLocation: sourceLocation) }
    #expect(e.message.contains(message), "\(text.debugDescription): \(e)", sourceLocation: sourceLocation)
}

/// The value of `key` in a one-key document `key = <value>`.
func value(_ literal: String, sourceLocation: SourceLocation = #_sourceLocation) -> TOMLValue? {
    root("v = " + literal + "\n", sourceLocation: sourceLocation)["v"]
}

/// The package root (for Fuzz/crashes).
let packageRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)  // Tests/HVTOMLTests/Support.swift
    return parts.joined(separator: "/")
}()
