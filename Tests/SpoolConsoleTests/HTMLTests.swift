import Testing
@testable import SpoolConsole

/// The console's one escaping function and the `HTML` type that routes every value through it.
@Suite struct HTMLTests {
    @Test func escapingCoversTextAndBothAttributeQuotes() {
        #expect(escapeHTML(#"<script>alert("x")</script> & 'y'"#)
                == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;")
        #expect(escapeHTML("plain text, ünïcödé ✓") == "plain text, ünïcödé ✓")
        #expect(escapeHTML("a\tb\nc") == "a\tb\nc")
        #expect(escapeHTML("nul\u{0}bell\u{7}del\u{7F}") == "nul\u{FFFD}bell\u{FFFD}del\u{FFFD}")
    }

    @Test func interpolatedValuesAreEscapedAndMarkupIsKept() {
        let id = #"<img src=x onerror="alert(1)">"#
        let cell: HTML = "<td title=\"\(id)\">\(id)</td>"
        #expect(cell.markup == "<td title=\"&lt;img src=x onerror=&quot;alert(1)&quot;&gt;\">&lt;img src=x onerror=&quot;alert(1)&quot;&gt;</td>")
        let inner: HTML = "<b>\("a&b")</b>"
        let outer: HTML = "<p>\(inner) \(42) \([inner, inner])</p>"
        #expect(outer.markup == "<p><b>a&amp;b</b> 42 <b>a&amp;b</b><b>a&amp;b</b></p>")
        #expect(HTML(text: "<x>").markup == "&lt;x&gt;")
        #expect(HTML.join(["<i>a</i>", "<i>b</i>"], separator: ", ").markup == "<i>a</i>, <i>b</i>")
    }

    @Test func percentEncodingKeepsEverySegmentWhole() {
        #expect(percentEncode("a/b?c&d#e%f g<h>") == "a%2Fb%3Fc%26d%23e%25f%20g%3Ch%3E")
        #expect(percentEncode("ünï") == "%C3%BCn%C3%AF")
        #expect(percentDecode("a%2Fb%3Fc%26d%23e%25f%20g%3Ch%3E") == "a/b?c&d#e%f g<h>")
        #expect(percentDecode("%C3%BCn%C3%AF") == "ünï")
        #expect(percentDecode("a+b", plusIsSpace: true) == "a b")
        #expect(percentDecode("a+b") == "a+b")
        #expect(percentDecode("%zz") == nil)
        #expect(percentDecode("%4") == nil)
        #expect(percentDecode("%FF") == nil)  // not UTF-8
    }

    @Test func formsAndQueriesDecodeInOrder() throws {
        let pairs = try #require(parseFormEncoded("query=WorkflowType+%3D+%27x%27&size=50&empty=&flag"))
        #expect(pairs.map(\.0) == ["query", "size", "empty", "flag"])
        #expect(pairs.map(\.1) == ["WorkflowType = 'x'", "50", "", ""])
        #expect(parseFormEncoded("a=%E0") == nil)
    }

    @Test func hexRoundTripsAndRefusesOtherText() {
        #expect(Links.hex([0, 1, 0xab, 0xff]) == "0001abff")
        #expect(Links.unhex("0001abFF") == [0, 1, 0xab, 0xff])
        #expect(Links.unhex("abc") == nil)
        #expect(Links.unhex("zz") == nil)
    }

    @Test func linksEncodeIdsAndQueries() {
        #expect(Links.workflow("default", .init(workflowID: "a/<b>", runID: "r1")) == "/namespaces/default/workflows/a%2F%3Cb%3E/r1")
        #expect(Links.workflows("ns", query: "WorkflowId = 'x'", page: 2, token: [1, 2])
                == "/namespaces/ns/workflows?query=WorkflowId%20%3D%20%27x%27&page=2&token=0102")
        #expect(Links.taskQueue("default", "q 1", .activity) == "/namespaces/default/task-queues/activity/q%201")
    }

    @Test func constantTimeComparisonComparesWholeStrings() {
        #expect(ConsoleAuth.constantTimeEqual("abc", "abc"))
        #expect(!ConsoleAuth.constantTimeEqual("abc", "abd"))
        #expect(!ConsoleAuth.constantTimeEqual("abc", "abcd"))
        #expect(!ConsoleAuth.constantTimeEqual("", "a"))
    }
}
