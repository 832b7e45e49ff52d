/// A cron schedule as Temporal reads one (robfig/cron's standard parser, in UTC): five fields
/// (minute, hour, day of month, month, day of week) of `*`, numbers, ranges `a-b`, steps `/n`
/// and lists `a,b`, with month (`JAN`…`DEC`) and weekday (`SUN`…`SAT`) names; or a descriptor
/// (`@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`,
/// `@every <duration>`). When both day fields are restricted, a day matches either (as in cron);
/// when one is `*`, both must match.
struct CronSchedule: Sendable, Equatable {
    private enum Kind: Equatable {
        case fields(minutes: UInt64, hours: UInt64, daysOfMonth: UInt64, months: UInt64, daysOfWeek: UInt64, anyDay: Bool)
        /// `@every`: a fixed delay, in whole seconds.
        case every(seconds: Int64)
    }

    private let kind: Kind

    /// Parses `text`.
    /// - Throws: ``SpoolError/Code/invalidArgument`` naming the field and what is wrong with it.
    init(_ text: String) throws(SpoolError) {
        func invalid(_ problem: String) -> SpoolError {
            SpoolError(.invalidArgument, "the cron schedule '\(text)' is not valid: \(problem)")
        }
        let trimmed = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let first = trimmed.first else { throw invalid("it is empty") }
        if first.hasPrefix("CRON_TZ=") || first.hasPrefix("TZ=") {
            throw invalid("time zones are not supported; schedules are in UTC")
        }
        var fields = trimmed
        if first.hasPrefix("@") {
            let descriptor = first.lowercased()
            if descriptor == "@every" {
                guard trimmed.count == 2 else { throw invalid("@every takes one duration, such as @every 1h30m") }
                guard let nanoseconds = Self.goDuration(trimmed[1]) else {
                    throw invalid("'\(trimmed[1])' is not a duration (a number and a unit: h, m, s, ms, us, ns, as in 1h30m)")
                }
                // robfig/cron: at least a second, rounded down to whole seconds.
                kind = .every(seconds: max(1, nanoseconds / 1_000_000_000))
                return
            }
            guard trimmed.count == 1 else { throw invalid("\(first) takes no fields") }
            switch descriptor {
            case "@yearly", "@annually": fields = ["0", "0", "1", "1", "*"]
            case "@monthly": fields = ["0", "0", "1", "*", "*"]
            case "@weekly": fields = ["0", "0", "*", "*", "0"]
            case "@daily", "@midnight": fields = ["0", "0", "*", "*", "*"]
            case "@hourly": fields = ["0", "*", "*", "*", "*"]
            default: throw invalid("unknown descriptor \(first)")
            }
        }
        guard fields.count == 5 else {
            throw invalid("expected 5 fields (minute hour day-of-month month day-of-week), found \(fields.count)")
        }
        let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        let weekdays = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
        let minute = try Self.field(fields[0], name: "minute", range: 0...59, names: [], firstName: 0, text: text)
        let hour = try Self.field(fields[1], name: "hour", range: 0...23, names: [], firstName: 0, text: text)
        let dom = try Self.field(fields[2], name: "day of month", range: 1...31, names: [], firstName: 0, text: text)
        let month = try Self.field(fields[3], name: "month", range: 1...12, names: months, firstName: 1, text: text)
        let dow = try Self.field(fields[4], name: "day of week", range: 0...6, names: weekdays, firstName: 0, text: text)
        kind = .fields(minutes: minute.bits, hours: hour.bits, daysOfMonth: dom.bits, months: month.bits, daysOfWeek: dow.bits,
                       anyDay: dom.star || dow.star)
    }

    /// One field: a bit per allowed value, and whether it was `*` (or `?`) without a step.
    private static func field(_ text: String, name: String, range: ClosedRange<Int>, names: [String], firstName: Int,
                              text whole: String) throws(SpoolError) -> (bits: UInt64, star: Bool) {
        func invalid(_ problem: String) -> SpoolError {
            SpoolError(.invalidArgument, "the cron schedule '\(whole)' is not valid: the \(name) field '\(text)' \(problem)")
        }
        func value(_ token: Substring) throws(SpoolError) -> Int {
            if let number = Int(token) {
                guard range.contains(number) else { throw invalid("has \(number), outside \(range.lowerBound)-\(range.upperBound)") }
                return number
            }
            if let index = names.firstIndex(of: token.lowercased()) { return index + firstName }
            throw invalid("has '\(token)', which is not a number\(names.isEmpty ? "" : " or a name")")
        }
        var bits: UInt64 = 0
        var star = false
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard !part.isEmpty else { throw invalid("has an empty list item") }
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw invalid("has more than one '/' in '\(part)'") }
            var step = 1
            if pieces.count == 2 {
                guard let parsed = Int(pieces[1]), parsed > 0 else { throw invalid("has the step '\(pieces[1])', not a positive number") }
                step = parsed
            }
            var low: Int, high: Int
            let span = pieces[0]
            if span == "*" || span == "?" {
                low = range.lowerBound
                high = range.upperBound
                if step == 1 { star = true }
            } else {
                let bounds = span.split(separator: "-", omittingEmptySubsequences: false)
                guard bounds.count <= 2, !bounds.contains(where: \.isEmpty) else { throw invalid("has the range '\(span)', not a-b") }
                low = try value(bounds[0])
                // "n/step" means n through the end of the range, as in robfig/cron.
                high = bounds.count == 2 ? try value(bounds[1]) : (pieces.count == 2 ? range.upperBound : low)
                guard low <= high else { throw invalid("has the range \(low)-\(high), which runs backwards") }
            }
            var v = low
            while v <= high {
                bits |= 1 << UInt64(v)
                v += step
            }
        }
        return (bits, star)
    }

    /// The first fire time strictly after `time`; nil when there is none within five years
    /// (a schedule such as `0 0 30 2 *`, which never fires).
    func next(after time: Timestamp) -> Timestamp? {
        let second: Int64 = 1_000_000_000
        switch kind {
        case .every(let seconds):
            // robfig/cron: the time's whole second, plus the delay.
            let whole = Self.floorDivide(time.nanosecondsSinceEpoch, second) * second
            return Timestamp(nanosecondsSinceEpoch: whole + seconds * second)
        case let .fields(minutes, hours, daysOfMonth, months, daysOfWeek, anyDay):
            let minuteLength = 60 * second
            var minute = Self.floorDivide(time.nanosecondsSinceEpoch, minuteLength) + 1
            let lastYear = CivilDate.civil(fromDays: Self.floorDivide(minute, 1440)).year + 5
            while true {
                let days = Self.floorDivide(minute, 1440)
                let minuteOfDay = minute - days * 1440
                let date = CivilDate.civil(fromDays: days)
                if date.year > lastYear { return nil }
                if months & (1 << UInt64(date.month)) == 0 {
                    let (y, m) = date.month == 12 ? (date.year + 1, 1) : (date.year, date.month + 1)
                    minute = CivilDate.days(fromCivil: y, m, 1) * 1440
                    continue
                }
                let weekday = Int(((days % 7) + 11) % 7)   // 1970-01-01 was a Thursday (4)
                let domMatch = daysOfMonth & (1 << UInt64(date.day)) != 0
                let dowMatch = daysOfWeek & (1 << UInt64(weekday)) != 0
                if !(anyDay ? domMatch && dowMatch : domMatch || dowMatch) {
                    minute = (days + 1) * 1440
                    continue
                }
                let hour = minuteOfDay / 60
                if hours & (1 << UInt64(hour)) == 0 {
                    minute = days * 1440 + (hour + 1) * 60
                    continue
                }
                if minutes & (1 << UInt64(minuteOfDay % 60)) == 0 {
                    minute += 1
                    continue
                }
                return Timestamp(nanosecondsSinceEpoch: minute * minuteLength)
            }
        }
    }

    /// How long after `now` the schedule fires next, counting from `scheduled` (the run's
    /// execution time) as Temporal's `GetBackoffForNextSchedule` does: `scheduled` itself while
    /// it is ahead, else the first fire time after it that is not before `now`. Nil when it
    /// never fires again.
    func backoff(scheduled: Timestamp, now: Timestamp) -> Duration? {
        if now < scheduled { return scheduled.duration(since: now) }
        let next: Timestamp?
        switch kind {
        case .every(let seconds):
            // Steps of the delay from the scheduled time's whole second until not before now.
            let step = seconds * 1_000_000_000
            let base = Self.floorDivide(scheduled.nanosecondsSinceEpoch, 1_000_000_000) * 1_000_000_000
            let behind = now.nanosecondsSinceEpoch - base
            let steps = max(1, (behind + step - 1) / step)
            next = Timestamp(nanosecondsSinceEpoch: base + steps * step)
        case .fields:
            next = self.next(after: max(scheduled, Timestamp(nanosecondsSinceEpoch: now.nanosecondsSinceEpoch - 1)))
        }
        return next.map { $0.duration(since: now) }
    }

    // MARK: Calendar arithmetic (proleptic Gregorian, UTC; Howard Hinnant's civil-date algorithms)

    static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// A Go duration (`1h30m`, `90s`, `1.5h`, `250ms`) in nanoseconds; nil when it is not one or
    /// is not positive.
    static func goDuration(_ text: String) -> Int64? {
        let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        var rest = Substring(text)
        var total = 0.0
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let number = rest.prefix(while: { $0.isNumber || $0 == "." })
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unitText = rest.prefix(while: { !$0.isNumber && $0 != "." })
            guard let unit = units.first(where: { $0.0 == unitText }) else { return nil }
            rest = rest.dropFirst(unitText.count)
            total += value * unit.1
        }
        guard total >= 1, total < 9e18 else { return nil }
        return Int64(total)
    }
}
