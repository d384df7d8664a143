import HVTOML
import Testing

@Suite struct InvalidDocumentTests {
    @Test func missingValuesAndKeys() {
        expectFailure("a = ", line: 1, column: 5, "expected a value after '='")
        expectFailure("a =\nb = 1", line: 1, column: 4, "expected a value after '='")
        expectFailure("a = # comment", line: 1, column: 5, "expected a value after '='")
        expectFailure("= 1", line: 1, column: 1, "expected a key, found '='")
        expectFailure("a. = 1", line: 1, column: 4, "expected a key after '.'")
        expectFailure("a b = 1", line: 1, column: 3, "expected '=' after the key 'a', found 'b'")
        expectFailure("a\n= 1", line: 1, column: 2, "expected '=' after the key 'a', found the end of the line")
        expectFailure("a = 1 b = 2", line: 1, column: 7, "expected the end of the line after the value, found 'b'")
        expectFailure("a = \"x\" \"y\"", line: 1, column: 9, "expected the end of the line after the value")
        expectFailure("x = ]", line: 1, column: 5, "expected a value, found ']'")
        expectFailure("\"\"\"k\"\"\" = 1", line: 1, column: 3, "expected '=' after the key")
    }

    @Test func duplicateKeysAndTables() {
        expectFailure("a = 1\na = 2", line: 2, column: 1, "duplicate key 'a'")
        expectFailure("a = 1\n\"a\" = 2", line: 2, "duplicate key 'a'")
        expectFailure("[t]\nx.y = 1\nx.y = 2", line: 3, "duplicate key 'x.y'")
        expectFailure("[a]\n[a]", line: 2, column: 1, "table [a] is defined more than once")
        expectFailure("[a.b]\n[a]\n[a]", line: 3, "table [a] is defined more than once")
        expectFailure("[a]\nb = 1\n[a.b]", line: 3, "'a.b' is already defined as an integer")
        expectFailure("a = { b = 1, b = 2 }", line: 1, column: 14, "duplicate key 'b'")
        expectFailure("a = { b.c = 1, b = 2 }", line: 1, "duplicate key 'b'")
    }

    @Test func tablesDefinedByDottedKeysOrInlineCannotBeReopened() {
        expectFailure("[fruit]\napple.color = \"red\"\n[fruit.apple]", line: 3, "table [fruit.apple] was already defined by dotted keys")
        expectFailure("[fruit]\napple.taste.sweet = true\n[fruit.apple.taste]", line: 3, "already defined by dotted keys")
        expectFailure("a.b = 1\n[a]", line: 2, "table [a] was already defined by dotted keys")
        expectFailure("a = {}\n[a]", line: 2, "'a' is already defined as an inline table")
        expectFailure("a = {b = 1}\n[a.c]", line: 2, "'a' is already defined as an inline table; it cannot hold a table")
        expectFailure("a = {b = 1}\na.c = 2", line: 2, "'a' is already defined as an inline table; it cannot hold more keys")
        expectFailure("a = { b = { c = 1 }, b.d = 2 }", line: 1, "'b' is already defined as an inline table")
        expectFailure("[a.b.c]\nz = 9\n[a]\nb.c.t = 1", line: 4, "cannot add to table 'b.c' with dotted keys")
        expectFailure("[a.b]\n[a]\nb.x = 1", line: 3, "cannot add to table 'b' with dotted keys")
        expectFailure("a = 1\na.b = 2", line: 2, "'a' is already defined as an integer")
    }

    @Test func arraysOfTablesRules() {
        expectFailure("a = [1]\n[[a]]", line: 2, "cannot define array of tables [[a]]: 'a' is already defined as an array")
        expectFailure("a = []\n[[a]]", line: 2, "already defined as an array")
        expectFailure("[[a]]\n[a]", line: 2, "'a' is an array of tables")
        expectFailure("[a]\n[[a]]", line: 2, "'a' is already a table")
        expectFailure("[a.b]\n[[a]]", line: 2, "'a' is already a table")
        expectFailure("[[a]]\nb = 1\n[a.b]", line: 3, "'a.b' is already defined as an integer")
        expectFailure("[[a]]\n[a]\nb.c = 1", line: 2, "array of tables")
        expectFailure("[[a]]\nx = 1\n[[a]]\nx = 1\nx = 2", line: 5, "duplicate key 'x'")
        // Each element has its own sub-tables.
        #expect(root("[[a]]\n[a.b]\n[[a]]\n[a.b]\n") == ["a": .array([.table(["b": .table([:])]), .table(["b": .table([:])])])])
        expectFailure("[[a ]\n", line: 1, "expected ']]' to close the array-of-tables header")
    }

    @Test func headers() {
        expectFailure("[]", line: 1, column: 2, "expected a key, found ']'")
        expectFailure("[a", line: 1, column: 3, "expected ']' to close the table header, found the end of the file")
        expectFailure("[a]]", line: 1, column: 4, "expected the end of the line after the table header, found ']'")
        expectFailure("[a] b = 1", line: 1, column: 5, "expected the end of the line after the table header")
        expectFailure("[a.]", line: 1, column: 4, "expected a key after '.'")
        expectFailure("[ [a] ]", line: 1, column: 3, "expected a key, found '['")
        expectFailure("[a\n]", line: 1, "expected ']'")
    }

    @Test func strings() {
        expectFailure("a = \"abc", line: 1, column: 5, "the string is not closed")
        expectFailure("a = \"a\nb\"", line: 1, column: 7, "not closed before the end of the line")
        expectFailure("a = 'a\nb'", line: 1, "the literal string is not closed before the end of the line")
        expectFailure("a = 'abc", line: 1, column: 5, "the literal string is not closed")
        expectFailure("a = \"\\x41\"", line: 1, column: 6, "invalid escape sequence '\\x'")
        expectFailure("a = \"\\e\"", line: 1, "invalid escape sequence")
        expectFailure("a = \"\\ \"", line: 1, "invalid escape sequence")
        expectFailure("a = \"\\uD800\"", line: 1, column: 6, "\\uD800 is not a Unicode scalar value")
        expectFailure("a = \"\\uDFFF\"", line: 1, "is not a Unicode scalar value")
        expectFailure("a = \"\\U00110000\"", line: 1, "\\U00110000 is not a Unicode scalar value")
        expectFailure("a = \"\\u12\"", line: 1, "\\u needs exactly 4 hexadecimal digits")
        expectFailure("a = \"\\U1234567\"", line: 1, "\\U needs exactly 8 hexadecimal digits")
        expectFailure("a = \"\\", line: 1, "the string ends inside an escape sequence")
        expectFailure("a = \"x\\\ny\"", line: 1, "only allowed in a multi-line string")
        expectFailure("a = \"\u{1}\"", line: 1, column: 6, "control character U+0001 must be escaped")
        expectFailure("a = \"\u{7F}\"", line: 1, "control character U+007F")
        expectFailure("a = 'x\u{1B}'", line: 1, "control character U+001B is not allowed in a literal string")
        expectFailure("a = \"\"\"\nabc", line: 1, column: 5, "the multi-line string is not closed")
        expectFailure("a = '''\nabc\n''", line: 1, "the multi-line string is not closed (expected ''')")
        expectFailure("a = \"\"\"\"\"\"\"\"\"", line: 1, "too many quotes")
        expectFailure("a = \"\"\"x\u{0}\"\"\"", line: 1, "NUL")
        expectFailure("a = \"\"\"x\u{8}\"\"\"", line: 1, "control character U+0008 must be escaped in a multi-line string")
        expectFailure("a = '''x\ry'''", line: 1, "a carriage return must be followed by a line feed")
        expectFailure("a = \"\"\"x \\ y\"\"\"", line: 1, "invalid escape sequence")
        expectFailure("a = \"\"\"\nok\n\"\"\" x", line: 3, "expected the end of the line after the value")
    }

    @Test func integers() {
        expectFailure("a = 01", line: 1, column: 5, "'01': leading zeros are not allowed")
        expectFailure("a = -01", line: 1, "leading zeros")
        expectFailure("a = 0_1", line: 1, "leading zeros")
        expectFailure("a = 1__0", line: 1, "'1__0' is not a valid number")
        expectFailure("a = 1_", line: 1, "is not a valid number")
        expectFailure("a = _1", line: 1, "'_1' is not a value")
        expectFailure("a = 0x", line: 1, "digits must follow the prefix")
        expectFailure("a = 0x_1", line: 1, "digits must follow the prefix")
        expectFailure("a = 0x1__2", line: 1, "underscores must be between digits")
        expectFailure("a = +0x1", line: 1, "cannot have a sign")
        expectFailure("a = -0b1", line: 1, "cannot have a sign")
        expectFailure("a = 0b2", line: 1, "'2' is not a base-2 digit")
        expectFailure("a = 0o8", line: 1, "'8' is not a base-8 digit")
        expectFailure("a = 0X1F", line: 1, "is not a valid number")
        expectFailure("a = 9223372036854775808", line: 1, "does not fit in a 64-bit integer")
        expectFailure("a = -9223372036854775809", line: 1, "does not fit in a 64-bit integer")
        expectFailure("a = 0x8000000000000000", line: 1, "does not fit in a 64-bit integer")
        expectFailure("a = 99999999999999999999999999999999", line: 1, "does not fit")
        expectFailure("a = 1x", line: 1, "is not a valid number")
        expectFailure("a = ++1", line: 1, "is not a valid number")
        expectFailure("a = -", line: 1, "is not a valid number")
    }

    @Test func floats() {
        expectFailure("a = 1.", line: 1, "a decimal point needs digits on both sides")
        expectFailure("a = .5", line: 1, "'.5' is not a value")
        expectFailure("a = 1.e5", line: 1, "a decimal point needs digits on both sides")
        expectFailure("a = 1e", line: 1, "the exponent needs digits")
        expectFailure("a = 1e+", line: 1, "the exponent needs digits")
        expectFailure("a = 03.14", line: 1, "leading zeros")
        expectFailure("a = 1._5", line: 1, "a decimal point needs digits")
        expectFailure("a = 1.5_", line: 1, "a decimal point needs digits")
        expectFailure("a = 1e400", line: 1, "too large for a 64-bit float")
        expectFailure("a = Inf", line: 1, "'Inf' is not a value")
        expectFailure("a = NaN", line: 1, "is not a value")
        expectFailure("a = infinity", line: 1, "is not a value")
        expectFailure("a = 1.2.3", line: 1, "is not a valid number")
    }

    @Test func booleansAndBareWords() {
        expectFailure("a = True", line: 1, "'True' is not a value")
        expectFailure("a = tru", line: 1, "'tru' is not a value")
        expectFailure("a = truex", line: 1, "is not a value")
        expectFailure("a = hello", line: 1, "strings need quotes")
    }

    @Test func datesAndTimes() {
        expectFailure("a = 1979-13-01", line: 1, "month 13 does not exist")
        expectFailure("a = 1979-00-01", line: 1, "month 0 does not exist")
        expectFailure("a = 1979-02-30", line: 1, "day 30 does not exist")
        expectFailure("a = 1900-02-29", line: 1, "day 29 does not exist")
        expectFailure("a = 1979-04-31", line: 1, "day 31 does not exist")
        expectFailure("a = 24:00:00", line: 1, "the time is out of range")
        expectFailure("a = 12:60:00", line: 1, "the time is out of range")
        expectFailure("a = 07:32", line: 1, "is not a valid date or time")
        expectFailure("a = 07:32:00.", line: 1, "is not a valid date or time")
        expectFailure("a = 1979-05-27T07:32:00+25:00", line: 1, "the time zone offset is out of range")
        expectFailure("a = 1979-05-27T07:32:00+0700", line: 1, "is not a valid date or time")
        expectFailure("a = 1979-05-27X07:32:00", line: 1, "is not a valid date or time")
        expectFailure("a = 1979-05-27T", line: 1, "is not a valid date or time")
        expectFailure("a = 1979-5-27", line: 1, "is not a valid date or time")
        expectFailure("a = 1979-05-27 07:32", line: 1, "is not a valid date or time")
        expectFailure("a = 2277-24-", line: 1, column: 5, "is not a valid date or time")
    }

    @Test func arrays() {
        expectFailure("a = [1 2]", line: 1, column: 8, "expected ',' or ']' after an array element, found '2'")
        expectFailure("a = [,]", line: 1, column: 6, "expected a value before ','")
        expectFailure("a = [1,,2]", line: 1, column: 8, "expected a value before ','")
        expectFailure("a = [1,\n2,\n", line: 1, column: 5, "the array is not closed")
        expectFailure("a = [1", line: 1, column: 5, "the array is not closed (expected ',' or ']')")
        expectFailure("a = [\n  1,\n  ,]", line: 3, column: 3, "expected a value before ','")
        expectFailure("a = [ }", line: 1, column: 7, "expected a value, found '}'")
        expectFailure("a = [1 # c ]", line: 1, column: 5, "the array is not closed")
    }

    @Test func inlineTables() {
        expectFailure("a = {b = 1,}", line: 1, column: 12, "a trailing comma is not allowed in an inline table")
        expectFailure("a = {b = 1\n}", line: 1, column: 11, "an inline table must be on one line")
        expectFailure("a = {\nb = 1}", line: 1, column: 6, "an inline table must be on one line")
        expectFailure("a = {b = 1 c = 2}", line: 1, column: 12, "expected ',' or '}' in the inline table, found 'c'")
        expectFailure("a = {b = 1", line: 1, column: 5, "the inline table is not closed")
        expectFailure("a = {b = 1, # c\n}", line: 1, "expected a key, found '#'")
        expectFailure("a = {,}", line: 1, "expected a key, found ','")
    }

    @Test func lineEndsAndControlCharacters() {
        expectFailure("a = 1\rb = 2", line: 1, column: 6, "a carriage return must be followed by a line feed")
        expectFailure("# x\r", line: 1, column: 4, "a carriage return must be followed by a line feed")
        expectFailure("\r", line: 1, column: 1, "carriage return")
        expectFailure("# bell \u{7}", line: 1, column: 8, "control character U+0007 is not allowed in a comment")
        expectFailure("# del \u{7F}", line: 1, "control character U+007F is not allowed in a comment")
        expectFailure("a = 1\n\u{1}", line: 2, column: 1, "expected a key, found control character U+0001")
        expectFailure("a\u{C}= 1", line: 1, "expected '=' after the key")
    }

    @Test func nulAndInvalidUTF8AreRefusedWithTheirPosition() {
        expectFailure("a = 1\nb = \"x\u{0}\"", line: 2, column: 7, "NUL byte")
        expectFailure("\u{0}", line: 1, column: 1, "NUL byte")
        let cases: [([UInt8], Int, Int, String)] = [
            ([0x61, 0x3D, 0xFF], 1, 3, "invalid UTF-8 byte 0xFF"),
            ([0x0A, 0x23, 0xC0, 0x80], 2, 2, "invalid UTF-8 byte 0xC0"),  // overlong NUL
            ([0x23, 0xED, 0xA0, 0x80], 1, 2, "invalid UTF-8 sequence"),  // UTF-16 surrogate
            ([0x23, 0xF4, 0x90, 0x80, 0x80], 1, 2, "invalid UTF-8 sequence"),  // above U+10FFFF
            ([0x23, 0xE2, 0x82], 1, 2, "truncated UTF-8 sequence"),
            ([0x23, 0xC3, 0xA9, 0x80], 1, 3, "invalid UTF-8 byte 0x80"),  // é then a stray continuation
        ]
        for (bytes, line, column, message) in cases {
            guard let e = failure(bytes) else { continue }
            #expect(e.line == line && e.column == column && e.message.contains(message), "\(bytes): \(e)")
        }
    }

    @Test func nonASCIIOutsideStringsNamesTheCharacter() {
        expectFailure("[a]\n[\u{3000}b]", line: 2, column: 2, "expected a key, found '\u{3000}' (U+3000)")
        expectFailure("é = 1", line: 1, column: 1, "(U+00E9)")
        expectFailure("a = 1 é", line: 1, column: 7, "found 'é'")
    }

    @Test func columnsCountCharactersNotBytes() {
        expectFailure("a = \"ééé\" x", line: 1, column: 11, "expected the end of the line")
    }

    @Test func nestingBeyondTheLimitIsAnError() {
        expectFailure("v = " + String(repeating: "[", count: 129) + String(repeating: "]", count: 129), line: 1, "values nested more than 128 levels deep")
        expectFailure("v = " + String(repeating: "[", count: 100_000), line: 1, "nested more than 128 levels deep")
        expectFailure("v = " + String(repeating: "{a=", count: 100_000), line: 1, "nested more than 128 levels deep")
        expectFailure("v = " + String(repeating: "[{a=", count: 50_000), line: 1, "nested more than 128 levels deep")
        expectFailure((0...128).map { "k\($0)" }.joined(separator: ".") + " = 1", line: 1, "keys nested more than 128 levels deep")
        expectFailure("[" + (0...128).map { "k\($0)" }.joined(separator: ".") + "]", line: 1, "tables nested more than 128 levels deep")
        // Headers and dotted keys add up.
        let half = (0..<64).map { "k\($0)" }.joined(separator: ".")
        expectFailure("[\(half)]\n\(half).x = 1", line: 2, "keys nested more than 128 levels deep")
        // A smaller limit can be asked for.
        #expect(throws: TOMLError.self) { try TOMLDocument(parsing: "a = [[1]]", maxDepth: 2) }
        #expect((try? TOMLDocument(parsing: "a = [1]", maxDepth: 2)) != nil)
    }

    @Test func errorDescriptionNamesLineAndColumn() {
        let e = failure("a = 1\na = 2")
        #expect(e?.description == "line 2, column 1: duplicate key 'a'")
        // Keys that are not bare are shown quoted, with control characters escaped.
        #expect(failure("\"a b\" = 1\n\"a b\" = 2")?.message == "duplicate key '\"a b\"'")
        #expect(failure("\"a\\tb\" = 1\n\"a\\tb\" = 2")?.message == "duplicate key '\"a\\tb\"'")
        #expect(failure("\"a\\u0001\" = 1\n\"a\\u0001\" = 2")?.message == "duplicate key '\"a\\u0001\"'")
    }
}
