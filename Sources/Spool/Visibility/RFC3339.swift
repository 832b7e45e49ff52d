/// RFC 3339 date-times (`2026-12-01T09:30:00Z`, `2026-12-01T10:30:00.5+01:00`), as visibility
/// queries write them, to and from ``Timestamp`` (UTC; the calendar arithmetic is ``CivilDate``).
enum RFC3339 {
    /// Parses `text`; nil unless it is a complete RFC 3339 date-time (`T` or `t` between date and
    /// time, a fraction of up to 9 digits, `Z`/`z` or a `±HH:MM` offset).
    static func parse(_ text: String) -> Timestamp? {
        let b = Array(text.utf8)
        var i = 0
        func number(_ digits: Int) -> Int64? {
            guard i + digits <= b.count else { return nil }
            var value: Int64 = 0
            for byte in b[i..<(i + digits)] {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
            }
            i += digits
            return value
        }
        func expect(_ allowed: String) -> Bool {
            guard i < b.count, allowed.utf8.contains(b[i]) else { return false }
            i += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
              expect("Tt"), let hour = number(2), expect(":"), let minute = number(2), expect(":"), let second = number(2),
              (1...12).contains(month), day >= 1, day <= CivilDate.daysIn(month: month, year: year),
              hour < 24, minute < 60, second < 61 else { return nil }
        var nanoseconds: Int64 = 0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") {
                guard digits < 9 else { return nil }
                nanoseconds = nanoseconds * 10 + Int64(b[i] - UInt8(ascii: "0"))
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<9 { nanoseconds *= 10 }
        }
        var offsetSeconds: Int64 = 0
        if expect("Zz") {
        } else if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            let sign: Int64 = b[i] == UInt8(ascii: "-") ? -1 : 1
            i += 1
            guard let offsetHours = number(2), expect(":"), let offsetMinutes = number(2),
                  offsetHours < 24, offsetMinutes < 60 else { return nil }
            offsetSeconds = sign * (offsetHours * 3600 + offsetMinutes * 60)
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let seconds = CivilDate.days(fromCivil: year, month, day) * 86_400
            + hour * 3600 + minute * 60 + min(second, 59) - offsetSeconds
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return nil }
        return Timestamp(nanosecondsSinceEpoch: scaled.addingSaturating(nanoseconds))
    }

    /// `timestamp` in UTC with as many fraction digits as it needs (none for whole seconds).
    static func format(_ timestamp: Timestamp) -> String {
        let total = timestamp.nanosecondsSinceEpoch
        var seconds = total / 1_000_000_000
        var fraction = total % 1_000_000_000
        if fraction < 0 {
            fraction += 1_000_000_000
            seconds -= 1
        }
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        let (year, month, day) = CivilDate.civil(fromDays: days)
        func padded(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        var text = "\(padded(year, 4))-\(padded(month, 2))-\(padded(day, 2))T"
            + "\(padded(secondOfDay / 3600, 2)):\(padded(secondOfDay / 60 % 60, 2)):\(padded(secondOfDay % 60, 2))"
        if fraction != 0 {
            var digits = padded(fraction, 9)
            while digits.hasSuffix("0") { digits.removeLast() }
            text += "." + digits
        }
        return text + "Z"
    }
}
