import Spool
import Testing
@testable import SpoolConsole

/// Times, durations, payload decoding and failures as the pages write them.
@Suite struct FormatTests {
    @Test func timesAreWrittenInUTCWithMilliseconds() {
        #expect(Format.isoUTC(Timestamp(nanosecondsSinceEpoch: 0)) == "1970-01-01T00:00:00.000Z")
        // 2026-12-06T16:10:24.123Z (checked with `date -u -d @1796573424.123`).
        #expect(Format.isoUTC(Timestamp(nanosecondsSinceEpoch: 1_796_573_424_123_000_000)) == "2026-12-06T16:10:24.123Z")
        #expect(Format.isoUTC(Timestamp(nanosecondsSinceEpoch: 951_782_400_000_000_000)) == "2000-02-29T00:00:00.000Z")
        #expect(Format.isoUTC(Timestamp(nanosecondsSinceEpoch: -1_000_000)) == "1969-12-31T23:59:59.999Z")
        let tag = Format.time(Timestamp(nanosecondsSinceEpoch: 0)).markup
        #expect(tag == "<time datetime=\"1970-01-01T00:00:00.000Z\" title=\"1970-01-01T00:00:00.000Z UTC\">1970-01-01 00:00:00.000Z</time>")
    }

    @Test func durationsAreShort() {
        #expect(Format.duration(.milliseconds(850)) == "850ms")
        #expect(Format.duration(.seconds(12)) == "12s")
        #expect(Format.duration(.milliseconds(12_500)) == "12.5s")
        #expect(Format.duration(.seconds(200)) == "3m 20s")
        #expect(Format.duration(.seconds(7500)) == "2h 5m")
        #expect(Format.duration(.seconds(3 * 86400 + 4 * 3600)) == "3d 4h")
    }

    @Test func payloadsAreDecodedAsTheirEncodingSays() {
        #expect(Format.payloadText(.json(#"{"b":1,"a":"<x>"}"#)).kind == "json")
        #expect(Format.payloadText(.json(#"{"b":1,"a":"<x>"}"#)).text.contains(#""a" : "<x>""#))
        #expect(Format.payloadText(.json("not json")) == ("json", "not json"))
        #expect(Format.payloadText(.binary(Array("hello".utf8))) == ("text", "hello"))
        #expect(Format.payloadText(.temporalNil) == ("null", "null"))
        let binary = Format.payloadText(.binary([0, 1, 2, 255]))
        #expect(binary.kind == "binary/plain" && binary.text == "4 bytes: 00 01 02 ff")
        // Markup in a payload reaches the page escaped.
        let shown = Format.payloads(.json(#""<img src=x onerror=alert(1)>""#)).markup
        #expect(shown.contains("&lt;img src=x onerror=alert(1)&gt;") && !shown.contains("<img"))
    }

    @Test func aFailureShowsItsCauseChainAndStackTrace() {
        let root = Failure.application("disk full", type: "IOError", nonRetryable: true)
        var outer = Failure.application("<b>charge failed</b>", type: "ChargeError")
        outer = Failure(message: outer.message, source: "PythonSDK", stackTrace: "at charge()\nat run()", cause: root, info: outer.info)
        let html = Format.failure(outer).markup
        #expect(html.contains("ChargeError") && html.contains("&lt;b&gt;charge failed&lt;/b&gt;"))
        #expect(html.contains("IOError, non-retryable") && html.contains("disk full"))
        #expect(html.contains("<pre>at charge()\nat run()</pre>"))
        #expect(html.components(separatedBy: "<li class=\"failure\">").count == 3)
    }
}
