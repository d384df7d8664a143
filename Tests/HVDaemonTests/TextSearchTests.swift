import HVServiceKit
import Testing

@Suite struct TextSearchTests {
    @Test func containsTextFindsBytesAnywhere() {
        #expect("hv_utils: Shutdown request received".containsText("Shutdown request received"))
        #expect("abc".containsText("abc") && "abc".containsText("c") && "abc".containsText(""))
        #expect(!"abc".containsText("abcd") && !"abc".containsText("bd") && !"".containsText("a"))
        #expect("aab".containsText("ab"))  // a partial match before the real one
        let line: Substring = "x;interface \"eth0\";"[...]
        #expect(line.dropFirst(2).containsText("interface \"eth0\""))
        #expect(!line.dropFirst(3).containsText("interface"))
        #expect("é.dpkg-new".containsText(".dpkg-"))
    }
}
