import HVTOML
import Testing

@Suite struct ValidDocumentTests {
    @Test func commentsBlankLinesAndKeyValues() {
        let r = root("""
            # a full-line comment
            key = "value"  # a comment at the end of a line

            \tother = 'x'\t# tab before the key
            # comment with "quotes", ünïcödé and a tab:\t.
            """)
        #expect(r == ["key": .string("value"), "other": .string("x")])
        #expect(r.keys == ["key", "other"])
    }

    @Test func bareQuotedAndDottedKeys() {
        let r = root("""
            bare_key = 1
            bare-key = 2
            1234 = 3
            "127.0.0.1" = 4
            "character encoding" = 5
            "ʎǝʞ" = 6
            'key2' = 7
            'quoted "value"' = 8
            "" = 9
            physical.color = "orange"
            site."google.com" = true
            fruit . flavor = "banana"
            3.14159 = "pi"
            """)
        #expect(r["bare_key"] == .integer(1))
        #expect(r["bare-key"] == .integer(2))
        #expect(r["1234"] == .integer(3))
        #expect(r["127.0.0.1"] == .integer(4))
        #expect(r["character encoding"] == .integer(5))
        #expect(r["ʎǝʞ"] == .integer(6))
        #expect(r["key2"] == .integer(7))
        #expect(r["quoted \"value\""] == .integer(8))
        #expect(r[""] == .integer(9))
        #expect(r["physical"] == .table(["color": .string("orange")]))
        #expect(r["site"] == .table(["google.com": .bool(true)]))
        #expect(r["fruit"] == .table(["flavor": .string("banana")]))
        #expect(r["3"] == .table(["14159": .string("pi")]))
    }

    @Test func dottedKeysExtendTheirOwnTablesInAnyOrder() {
        let r = root("""
            apple.type = "fruit"
            orange.type = "fruit"
            apple.skin = "thin"
            orange.skin = "thick"
            """)
        #expect(r["apple"] == .table(["type": .string("fruit"), "skin": .string("thin")]))
        #expect(r["orange"] == .table(["type": .string("fruit"), "skin": .string("thick")]))
    }

    @Test func basicStringsWithEveryEscape() {
        #expect(value(#""I'm a string. \"You can quote me\". Name\tJos\u00E9\nLocation\tSF.""#)
            == .string("I'm a string. \"You can quote me\". Name\tJosé\nLocation\tSF."))
        #expect(value(#""\b\t\n\f\r\"\\""#) == .string("\u{8}\t\n\u{C}\r\"\\"))
        #expect(value(#""\u0041\u00e9\u20AC\U0001F600\U0010FFFF""#) == .string("Aé€😀\u{10FFFF}"))
        #expect(value(#""""#) == .string(""))
        #expect(value("\"tab\there\"") == .string("tab\there"))
        #expect(value("\"ünïcödé 😀\"") == .string("ünïcödé 😀"))
    }

    @Test func literalStrings() {
        #expect(value(#"'C:\Users\nodejs\templates'"#) == .string(#"C:\Users\nodejs\templates"#))
        #expect(value(#"'\\ServerX\admin$\system32\'"#) == .string(#"\\ServerX\admin$\system32\"#))
        #expect(value(#"'Tom "Dubs" Preston-Werner'"#) == .string(#"Tom "Dubs" Preston-Werner"#))
        #expect(value(#"'<\i\c*\s*>'"#) == .string(#"<\i\c*\s*>"#))
        #expect(value("''") == .string(""))
    }

    @Test func multiLineBasicStrings() {
        #expect(value("\"\"\"\nRoses are red\nViolets are blue\"\"\"") == .string("Roses are red\nViolets are blue"))
        // Line-ending backslash: the break and the blank space after it are dropped.
        let folded = "The quick brown fox jumps over the lazy dog."
        #expect(value("\"\"\"\nThe quick brown \\\n\n\n  fox jumps over \\\n    the lazy dog.\"\"\"") == .string(folded))
        #expect(value("\"\"\"\\\n       The quick brown \\\n       fox jumps over \\\n       the lazy dog.\\\n       \"\"\"") == .string(folded))
        // Blanks between the backslash and the line end are allowed.
        #expect(value("\"\"\"a \\  \t\n  b\"\"\"") == .string("a b"))
        // One or two quotes inside, and up to two right before the closing three.
        #expect(value(#""""Here are two quotation marks: "". Simple enough.""""#) == .string(#"Here are two quotation marks: "". Simple enough."#))
        #expect(value(#""""Here are three quotation marks: ""\".""""#) == .string(#"Here are three quotation marks: """."#))
        #expect(value(#"""""This," she said, "is just a pointless statement."""""#) == .string(#""This," she said, "is just a pointless statement.""#))
        #expect(value("\"\"\"\"\"\"") == .string(""))
        #expect(value("\"\"\"tab\tand \\u00E9\"\"\"") == .string("tab\tand é"))
        // CRLF inside becomes LF; the first line break is dropped whatever its kind.
        #expect(value("\"\"\"\r\na\r\nb\"\"\"") == .string("a\nb"))
    }

    @Test func multiLineLiteralStrings() {
        #expect(value("'''I [dw]on't need \\d{2} apples'''") == .string(#"I [dw]on't need \d{2} apples"#))
        #expect(value("'''\nThe first newline is\ntrimmed in raw strings.\n   All other whitespace\n   is preserved.\n'''")
            == .string("The first newline is\ntrimmed in raw strings.\n   All other whitespace\n   is preserved.\n"))
        #expect(value("'''Here are fifteen quotation marks: \"\"\"\"\"\"\"\"\"\"\"\"\"\"\"'''")
            == .string("Here are fifteen quotation marks: \"\"\"\"\"\"\"\"\"\"\"\"\"\"\""))
        #expect(value("''''That,' she said, 'is still pointless.'''''") == .string("'That,' she said, 'is still pointless.''"))
        #expect(value("'''a\\\nb'''") == .string("a\\\nb"))
    }

    @Test func integers() {
        let cases: [(String, Int64)] = [
            ("+99", 99), ("42", 42), ("0", 0), ("-17", -17), ("+0", 0), ("-0", 0),
            ("1_000", 1000), ("5_349_221", 5_349_221), ("53_49_221", 5_349_221), ("1_2_3_4_5", 12345),
            ("0xDEADBEEF", 0xDEADBEEF), ("0xdeadbeef", 0xDEADBEEF), ("0xdead_beef", 0xDEADBEEF), ("0x00ff", 255),
            ("0o01234567", 0o01234567), ("0o755", 0o755), ("0b11010110", 0b11010110), ("0b0", 0),
            ("9223372036854775807", .max), ("-9223372036854775808", .min), ("0x7FFFFFFFFFFFFFFF", .max),
        ]
        for (text, expected) in cases {
            #expect(value(text) == .integer(expected), "\(text)")
        }
    }

    @Test func floats() {
        let cases: [(String, Double)] = [
            ("+1.0", 1), ("3.1415", 3.1415), ("-0.01", -0.01), ("5e+22", 5e22), ("1e06", 1e6), ("-2E-2", -0.02),
            ("6.626e-34", 6.626e-34), ("224_617.445_991_228", 224_617.445_991_228), ("0.0", 0), ("1e1_0", 1e10),
            ("inf", .infinity), ("+inf", .infinity), ("-inf", -.infinity), ("0e0", 0), ("1.7976931348623157e308", .greatestFiniteMagnitude),
        ]
        for (text, expected) in cases {
            #expect(value(text) == .float(expected), "\(text)")
        }
        let negativeZero = value("-0.0")
        if case .float(let d)? = negativeZero { #expect(d == 0 && d.sign == .minus) } else { Issue.record("\(String(describing: negativeZero))") }
        for text in ["nan", "+nan", "-nan"] {
            let v = value(text)
            if case .float(let d)? = v { #expect(d.isNaN, "\(text)") } else { Issue.record("\(text): \(String(describing: v))") }
        }
    }

    @Test func booleans() {
        #expect(root("t = true\nf = false") == ["t": .bool(true), "f": .bool(false)])
    }

    @Test func datesAndTimesKeepTheirText() {
        let cases: [(String, TOMLValue)] = [
            ("1979-05-27T07:32:00Z", .offsetDateTime("1979-05-27T07:32:00Z")),
            ("1979-05-27T00:32:00-07:00", .offsetDateTime("1979-05-27T00:32:00-07:00")),
            ("1979-05-27T00:32:00.999999-07:00", .offsetDateTime("1979-05-27T00:32:00.999999-07:00")),
            ("1979-05-27 07:32:00Z", .offsetDateTime("1979-05-27 07:32:00Z")),
            ("1979-05-27t07:32:00z", .offsetDateTime("1979-05-27t07:32:00z")),
            ("1979-05-27T07:32:00", .localDateTime("1979-05-27T07:32:00")),
            ("1979-05-27 00:32:00.999999", .localDateTime("1979-05-27 00:32:00.999999")),
            ("1979-05-27", .localDate("1979-05-27")),
            ("2000-02-29", .localDate("2000-02-29")),
            ("2024-02-29", .localDate("2024-02-29")),
            ("07:32:00", .localTime("07:32:00")),
            ("00:32:00.999999", .localTime("00:32:00.999999")),
            ("23:59:60", .localTime("23:59:60")),
        ]
        for (text, expected) in cases {
            #expect(value(text) == expected, "\(text)")
        }
        // A date and time in an array, with the space separator.
        #expect(value("[1979-05-27 07:32:00, 1979-05-27]") == .array([.localDateTime("1979-05-27 07:32:00"), .localDate("1979-05-27")]))
    }

    @Test func arrays() {
        #expect(value("[ 1, 2, 3 ]") == .array([.integer(1), .integer(2), .integer(3)]))
        #expect(value("[]") == .array([]))
        #expect(value("[ [ 1, 2 ], [3, 4, 5] ]") == .array([.array([.integer(1), .integer(2)]), .array([.integer(3), .integer(4), .integer(5)])]))
        #expect(value("[ [ 1, 2 ], [\"a\", \"b\", \"c\"] ]")
            == .array([.array([.integer(1), .integer(2)]), .array([.string("a"), .string("b"), .string("c")])]))
        // Mixed types are allowed in TOML 1.0.
        #expect(value("[ 0.1, 0.2, 0.5, 1, 2, 5, \"x\", true ]")
            == .array([.float(0.1), .float(0.2), .float(0.5), .integer(1), .integer(2), .integer(5), .string("x"), .bool(true)]))
        #expect(value("[ { x = 1, y = 2, z = 3 }, { x = 7, y = 8, z = 9 } ]")
            == .array([.table(["x": .integer(1), "y": .integer(2), "z": .integer(3)]), .table(["x": .integer(7), "y": .integer(8), "z": .integer(9)])]))
        // Multi-line, with comments and a trailing comma.
        #expect(value("[\n  1, # one\n  2\n  , 3,\n\n  # done\n]") == .array([.integer(1), .integer(2), .integer(3)]))
        #expect(value("[\r\n  \"a\",\r\n]") == .array([.string("a")]))
        #expect(value("[1,]") == .array([.integer(1)]))
        #expect(value("[\"\"\"x\ny\"\"\", '''z''']") == .array([.string("x\ny"), .string("z")]))
    }

    @Test func inlineTables() {
        #expect(value("{ first = \"Tom\", last = \"Preston-Werner\" }") == .table(["first": .string("Tom"), "last": .string("Preston-Werner")]))
        #expect(value("{}") == .table([:]))
        #expect(value("{ type.name = \"pug\", type.size = 1 }") == .table(["type": .table(["name": .string("pug"), "size": .integer(1)])]))
        #expect(value("{a={b={c=[1,{d=2}]}}}") == .table(["a": .table(["b": .table(["c": .array([.integer(1), .table(["d": .integer(2)])])])])]))
        // A multi-line value inside an inline table is fine.
        #expect(value("{ a = [\n1,\n2], s = \"\"\"x\ny\"\"\" }") == .table(["a": .array([.integer(1), .integer(2)]), "s": .string("x\ny")]))
    }

    @Test func tablesAndSubTables() {
        let r = root("""
            [table-1]
            key1 = "some string"
            key2 = 123

            [table-2]
            key1 = "another string"

            [dog."tater.man"]
            type.name = "pug"

            [ j . "ʞ" . 'l' ]
            x = 1

            [x.y.z.w]
            [x]
            top = 1
            """)
        #expect(r["table-1"] == .table(["key1": .string("some string"), "key2": .integer(123)]))
        #expect(r["table-2"] == .table(["key1": .string("another string")]))
        #expect(r["dog"] == .table(["tater.man": .table(["type": .table(["name": .string("pug")])])]))
        #expect(r["j"] == .table(["ʞ": .table(["l": .table(["x": .integer(1)])])]))
        #expect(r["x"] == .table(["y": .table(["z": .table(["w": .table([:])])]), "top": .integer(1)]))
        #expect(r.keys == ["table-1", "table-2", "dog", "j", "x"])
    }

    @Test func dottedKeyTablesAcceptSubTableHeaders() {
        let r = root("""
            [fruit]
            apple.color = "red"
            apple.taste.sweet = true

            [fruit.apple.texture]
            smooth = true
            """)
        #expect(r["fruit"] == .table(["apple": .table([
            "color": .string("red"), "taste": .table(["sweet": .bool(true)]), "texture": .table(["smooth": .bool(true)]),
        ])]))
    }

    @Test func arraysOfTables() {
        let r = root("""
            [[products]]
            name = "Hammer"
            sku = 738594937

            [[products]]  # empty table within the array

            [[products]]
            name = "Nail"
            color = "gray"

            [[fruits]]
            name = "apple"

            [fruits.physical]  # subtable
            color = "red"

            [[fruits.varieties]]  # nested array of tables
            name = "red delicious"

            [[fruits.varieties]]
            name = "granny smith"

            [[fruits]]
            name = "banana"

            [[fruits.varieties]]
            name = "plantain"
            """)
        #expect(r["products"] == .array([
            .table(["name": .string("Hammer"), "sku": .integer(738_594_937)]), .table([:]),
            .table(["name": .string("Nail"), "color": .string("gray")]),
        ]))
        #expect(r["fruits"] == .array([
            .table([
                "name": .string("apple"), "physical": .table(["color": .string("red")]),
                "varieties": .array([.table(["name": .string("red delicious")]), .table(["name": .string("granny smith")])]),
            ]),
            .table(["name": .string("banana"), "varieties": .array([.table(["name": .string("plantain")])])]),
        ]))
    }

    @Test func implicitTableFromHeaderMayBeExtendedByDottedKeysOnce() {
        // `y` is created by the header [x.y.z]; [x] may add to it with a dotted key.
        #expect(root("[x.y.z]\n[x]\ny.w = 1\n") == ["x": .table(["y": .table(["z": .table([:]), "w": .integer(1)])])])
    }

    @Test func crlfLineEndings() {
        let r = root("# c\r\n[a]\r\nb = 1 # c\r\nc = \"x\"\r\n\r\n[[d]]\r\ne = [\r\n 1,\r\n]\r\n")
        #expect(r == ["a": .table(["b": .integer(1), "c": .string("x")]), "d": .array([.table(["e": .array([.integer(1)])])])])
    }

    @Test func emptyAndBlankDocuments() {
        #expect(root("") == [:])
        #expect(root("\n\n   \t\n# only a comment") == [:])
        #expect(root("a = 1") == ["a": .integer(1)])  // no final line break
    }

    @Test func aLeadingByteOrderMarkIsSkipped() throws {
        let doc = try TOMLDocument(parsing: [0xEF, 0xBB, 0xBF] + Array("a = 1\n".utf8))
        #expect(doc.root == ["a": .integer(1)])
        // Columns count from after it; elsewhere it is an ordinary (invalid) character.
        #expect(failure([0xEF, 0xBB, 0xBF] + Array("a = 1 x".utf8))?.column == 7)
        #expect(failure(Array("a = 1\n".utf8) + [0xEF, 0xBB, 0xBF])?.message.contains("U+FEFF") == true)
    }

    @Test func largeDocumentsParseInOnePass() throws {
        let items = String(repeating: "1,", count: 200_000)
        let keys = (0..<20_000).map { "k\($0) = \"v\($0)\"" }.joined(separator: "\n")
        let doc = try parse("a = [\(items)]\n[t]\n\(keys)\n")
        if case .array(let a)? = doc.root["a"] { #expect(a.count == 200_000) } else { Issue.record("a is not an array") }
        if case .table(let t)? = doc.root["t"] {
            #expect(t.count == 20_000)
            #expect(t["k19999"] == .string("v19999"))
        } else {
            Issue.record("t is not a table")
        }
        #expect(doc.line(of: ["t", "k19999"]) == 20_002)
    }

    @Test func bytesAndStringInputAgree() throws {
        let text = "[a]\nb = \"é\"\n"
        #expect(try TOMLDocument(parsing: Array(text.utf8)).root == (try TOMLDocument(parsing: text)).root)
    }

    @Test func nestingUpToTheLimitIsAccepted() throws {
        // `v` holds the outermost array at level 1; the innermost (empty) one is at level 128.
        let deep = "v = " + String(repeating: "[", count: 128) + String(repeating: "]", count: 128)
        let doc = try parse(deep)
        var v = doc.root["v"]
        var depth = 0
        while case .array(let items)? = v {
            depth += 1
            v = items.first
        }
        #expect(depth == 128)
        let keys = (1...128).map { "k\($0)" }.joined(separator: ".") + " = 1"
        #expect(try parse(keys).line(of: (1...128).map { "k\($0)" }) == 1)
    }
}

@Suite struct KeyLineTests {
    @Test func everyKeyAndTableHasItsLine() throws {
        let doc = try parse("""
            top = 1
            [vss]   # the VSS section
            a = 1
              "quoted key" = 2
            'literal' = 3
            hooks . freeze = "/x"  # dotted, with spaces
            [ vss.more ]
            thaw = "/y"
            [[arr]]
            item = 1
            [[arr]]
            item = 2
            t = { x = 1, y.z = 2 }
            list = [
              "a",
              { k = 1 },
            ]
            """)
        #expect(doc.line(of: ["top"]) == 1)
        #expect(doc.line(of: ["vss"]) == 2)
        #expect(doc.line(of: ["vss", "a"]) == 3)
        #expect(doc.line(of: ["vss", "quoted key"]) == 4)
        #expect(doc.line(of: ["vss", "literal"]) == 5)
        #expect(doc.line(of: ["vss", "hooks"]) == 6)
        #expect(doc.line(of: ["vss", "hooks", "freeze"]) == 6)
        #expect(doc.line(of: ["vss", "more"]) == 7)
        #expect(doc.line(of: ["vss", "more", "thaw"]) == 8)
        #expect(doc.line(of: ["arr"]) == 9)
        #expect(doc.lines[[.key("arr"), .index(0)]] == 9)
        #expect(doc.lines[[.key("arr"), .index(0), .key("item")]] == 10)
        #expect(doc.lines[[.key("arr"), .index(1)]] == 11)
        #expect(doc.lines[[.key("arr"), .index(1), .key("item")]] == 12)
        #expect(doc.lines[[.key("arr"), .index(1), .key("t"), .key("y"), .key("z")]] == 13)
        #expect(doc.lines[[.key("arr"), .index(1), .key("list")]] == 14)
        #expect(doc.lines[[.key("arr"), .index(1), .key("list"), .index(0)]] == 15)
        #expect(doc.lines[[.key("arr"), .index(1), .key("list"), .index(1), .key("k")]] == 16)
    }

    @Test func multiLineStringsDoNotHideLaterLines() throws {
        let doc = try parse("""
            [kvp]
            text = \"\"\"
            fake = 1
            [fake]
            \"\"\"
            lit = '''
            fake2 = 2'''
            # commented = 1
            real = "a # not a comment" # comment with \"\"\" quotes
            after = 1
            """)
        #expect(doc.line(of: ["kvp", "fake"]) == nil)
        #expect(doc.line(of: ["fake"]) == nil)
        #expect(doc.line(of: ["kvp", "commented"]) == nil)
        #expect(doc.line(of: ["kvp", "text"]) == 2)
        #expect(doc.line(of: ["kvp", "lit"]) == 6)
        #expect(doc.line(of: ["kvp", "real"]) == 9)
        #expect(doc.line(of: ["kvp", "after"]) == 10)
        #expect(doc.root["kvp"] == .table([
            "text": .string("fake = 1\n[fake]\n"), "lit": .string("fake2 = 2"), "real": .string("a # not a comment"), "after": .integer(1),
        ]))
    }

    @Test func aTableDefinedAfterItsSubTableTakesItsHeaderLine() throws {
        let doc = try parse("[a.b]\nx = 1\n[a]\ny = 2\n")
        #expect(doc.line(of: ["a"]) == 3)
        #expect(doc.line(of: ["a", "b"]) == 1)
        #expect(doc.line(of: ["a", "y"]) == 4)
    }

    @Test func crlfLinesAreCounted() throws {
        let doc = try parse("a = 1\r\n\r\nb = 2\r\n")
        #expect(doc.line(of: ["b"]) == 3)
    }
}
