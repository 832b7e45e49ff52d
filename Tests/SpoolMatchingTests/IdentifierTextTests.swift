import Testing
import SpoolMatching

/// The rules of `IdentifierText.problem(in:)` byte by byte: printable ASCII takes a fast path, so
/// every ASCII code is checked on both sides of that path's bounds, at each position in a name.
@Suite("Identifier text")
struct IdentifierTextTests {
    @Test("every ASCII code: U+0000–U+001F and U+007F are refused, U+0020–U+007E accepted, at any position")
    func everyASCIICode() {
        for value in UInt8(0)...0x7F {
            let character = String(decoding: [value], as: UTF8.self)
            let refused = value < 0x20 || value == 0x7F
            for (name, position) in [(character, 1), ("queue" + character, 6), ("a" + character + "b", 2)] {
                let problem = IdentifierText.problem(in: name)
                if refused {
                    #expect(problem?.hasSuffix("at character \(position)") == true,
                            "U+\(String(value, radix: 16)) in \(name.debugDescription): \(problem ?? "accepted")")
                } else {
                    #expect(problem == nil, "U+\(String(value, radix: 16)) in \(name.debugDescription): \(problem ?? "")")
                }
            }
        }
    }

    @Test("a refused or non-ASCII byte is found at every position of a long name, in every eight-byte word and the tail")
    func everyPosition() {
        let refusedCodes: [UInt8] = [0x00, 0x09, 0x1F, 0x7F]
        for length in [8, 16, 21] {
            for position in 0..<length {
                for value in refusedCodes {
                    var bytes = [UInt8](repeating: UInt8(ascii: "q"), count: length)
                    bytes[position] = value
                    let problem = IdentifierText.problem(in: String(decoding: bytes, as: UTF8.self))
                    #expect(problem?.hasSuffix("at character \(position + 1)") == true,
                            "U+\(String(value, radix: 16)) at byte \(position) of \(length): \(problem ?? "accepted")")
                }
                // A C1 control (two UTF-8 bytes, the first with its top bit set) and an accepted é.
                var c1 = [UInt8](repeating: UInt8(ascii: "q"), count: length)
                c1.replaceSubrange(position..<position + 1, with: [0xC2, 0x85])
                #expect(IdentifierText.problem(in: String(decoding: c1, as: UTF8.self))?.hasSuffix("at character \(position + 1)") == true)
                var accented = [UInt8](repeating: UInt8(ascii: "~"), count: length)
                accented.replaceSubrange(position..<position + 1, with: [0xC3, 0xA9])
                #expect(IdentifierText.problem(in: String(decoding: accented, as: UTF8.self)) == nil)
            }
            // The printable bounds in every lane: space and tilde pass.
            #expect(IdentifierText.problem(in: String(repeating: " ~", count: length)) == nil)
        }
    }

    @Test("beyond ASCII: C1 codes, the line and paragraph separators and U+FFFD are refused; other text is accepted")
    func beyondASCII() {
        #expect(IdentifierText.problem(in: "orders\u{85}") == "it contains a control character (U+0085) at character 7")
        #expect(IdentifierText.problem(in: "x\u{9F}") == "it contains a control character (U+009F) at character 2")
        #expect(IdentifierText.problem(in: "é\u{2028}")?.contains("line or paragraph separator (U+2028) at character 2") == true)
        #expect(IdentifierText.problem(in: "\u{2029}")?.contains("U+2029") == true)
        #expect(IdentifierText.problem(in: "ab\u{FFFD}")?.hasPrefix("it contains U+FFFD") == true)
        for name in ["é", "\u{A0}", "orders/eu-west émoji 🙂", "注文", String(repeating: "é", count: 500)] {
            #expect(IdentifierText.problem(in: name) == nil, "\(name.debugDescription)")
        }
    }

    @Test("length is counted in UTF-8 bytes, ASCII or not")
    func length() {
        #expect(IdentifierText.problem(in: "") == "it is empty")
        #expect(IdentifierText.problem(in: String(repeating: "x", count: 1000)) == nil)
        #expect(IdentifierText.problem(in: String(repeating: "x", count: 1001)) == "it is 1001 UTF-8 bytes; the limit is 1000")
        #expect(IdentifierText.problem(in: String(repeating: "é", count: 501)) == "it is 1002 UTF-8 bytes; the limit is 1000")
        #expect(IdentifierText.problem(in: "abcd", maximumUTF8Length: 3) == "it is 4 UTF-8 bytes; the limit is 3")
    }
}
