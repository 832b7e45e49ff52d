import SpoolLogTesting
import Testing
@testable import Spool

/// The query language alone: what parses, what it means, and the error a malformed query gets.
@Suite struct VisibilityQueryTests {
    /// The column and problem of the error `text` gets.
    func failure(_ text: String, custom: [String: IndexedValueType] = [:]) -> String? {
        do {
            _ = try VisibilityQuery(text, customAttributes: custom)
            return nil
        } catch {
            #expect(error.code == .invalidArgument)
            return error.message
        }
    }

    @Test func rfc3339TimesMatchHandComputedEpochNanoseconds() throws {
        // 2026-12-01T00:00:00Z: 1970–2025 are 56 years, 14 of them leap years (1972 … 2024), then
        // January to November 2026 are 334 days: 56 × 365 + 14 + 334 = 20,788 days.
        #expect(RFC3339.parse("2026-12-01T00:00:00Z") == Timestamp(nanosecondsSinceEpoch: 20_788 * 86_400 * 1_000_000_000))
        #expect(RFC3339.parse("1970-01-01T00:00:00Z") == Timestamp(nanosecondsSinceEpoch: 0))
        #expect(RFC3339.parse("1970-01-01T00:00:01.5Z") == Timestamp(nanosecondsSinceEpoch: 1_500_000_000))
        // An offset: 01:00 at +01:00 is midnight UTC.
        #expect(RFC3339.parse("1970-01-02T01:00:00+01:00") == Timestamp(nanosecondsSinceEpoch: 86_400 * 1_000_000_000))
        #expect(RFC3339.parse("1969-12-31T23:59:59.999999999Z") == Timestamp(nanosecondsSinceEpoch: -1))
        // 2000-02-29 is a leap day (divisible by 400); 1900-02-29 is not a date.
        #expect(RFC3339.parse("2000-03-01T00:00:00Z")!.nanosecondsSinceEpoch
                - RFC3339.parse("2000-02-28T00:00:00Z")!.nanosecondsSinceEpoch == 2 * 86_400 * 1_000_000_000)
        for bad in ["1900-02-29T00:00:00Z", "2026-12-01", "2026-12-01T00:00:00", "2026-13-01T00:00:00Z",
                    "2026-12-01T24:00:00Z", "2026-12-01T00:00:00.Z", "2026-12-01T00:00:00.1234567890Z", "2026-12-01T00:00:00Zjunk", ""] {
            #expect(RFC3339.parse(bad) == nil, "\(bad)")
        }
        for text in ["2026-12-01T09:30:00Z", "1999-12-31T23:59:59.000000001Z", "1960-06-15T12:00:00.25Z"] {
            #expect(RFC3339.format(try #require(RFC3339.parse(text))) == text)
        }
    }

    @Test func executionDurationsTakeGoStyleAndClockStyle() {
        #expect(QueryDuration.parse("1h30m") == Int64(5_400_000_000_000))
        #expect(QueryDuration.parse("500ms") == 500_000_000)
        #expect(QueryDuration.parse("2d") == Int64(172_800_000_000_000))
        #expect(QueryDuration.parse("00:05:00") == Int64(300_000_000_000))
        for bad in ["", "h", "10", "1x", "00:60:00", "1h-5m"] { #expect(QueryDuration.parse(bad) == nil, "\(bad)") }
    }

    @Test func malformedQueriesNameTheColumnAndTheProblem() {
        #expect(failure("WorkflowType = 'a' AND") == "invalid query: expected a search attribute name, found the end of the query at column 23")
        #expect(failure("WorkflowType = 'a") == "invalid query: a ' quote that is never closed at column 16")
        #expect(failure("WorkflowType 'a'") == "invalid query: expected an operator after WorkflowType (=, !=, <, <=, >, >=, IN, BETWEEN, STARTS_WITH, IS), found the string 'a' at column 14")
        #expect(failure("Nope = 'a'") == "invalid query: unknown search attribute Nope (not predefined and not registered in this namespace) at column 1")
        #expect(failure("(WorkflowType = 'a'") == "invalid query: expected ')' to close the '(' at column 1, found the end of the query at column 20")
        #expect(failure("WorkflowType = a") == "invalid query: expected a value, found the name a (did you forget to quote 'a'?) at column 16")
        #expect(failure("WorkflowType = 'a' LIMIT 5") == "invalid query: LIMIT is not supported (use the page size) at column 20")
        #expect(failure("WorkflowType = 'a' 'b'") == "invalid query: expected AND, OR, GROUP BY, ORDER BY or the end of the query, found the string 'b' at column 20")
        #expect(failure("WorkflowType ~ 'a'") == "invalid query: unexpected character '~' at column 14")
        #expect(failure("WorkflowType") == "invalid query: WorkflowType is not followed by a condition (incomplete expression) at column 1")
        #expect(failure("HistorySizeBytes > 5") == "invalid query: search attribute HistorySizeBytes is not supported: Spool does not index history sizes yet at column 1")
    }

    @Test func valuesMustFitTheAttributesType() {
        #expect(failure("StartTime > 'yesterday'") == "invalid query: 'yesterday' is not a valid value for StartTime, a Datetime attribute (an RFC 3339 time such as '2026-12-01T00:00:00Z', or nanoseconds since the epoch) at column 13")
        #expect(failure("HistoryLength = 'ten'") == "invalid query: 'ten' is not a valid value for HistoryLength, a Int attribute at column 17")
        #expect(failure("WorkflowId = 5") == "invalid query: 5 is not a valid value for WorkflowId, a Keyword attribute (a quoted string) at column 14")
        #expect(failure("ExecutionStatus = 'Done'") == "invalid query: 'Done' is not a valid value for ExecutionStatus, a Keyword attribute (one of 'Running', 'Completed', 'Failed', 'Canceled', 'Terminated', 'ContinuedAsNew', 'TimedOut') at column 19")
        #expect(failure("ExecutionStatus = 9") != nil)
        #expect(failure("ExecutionStatus = 2") == nil)
        #expect(failure("Flag = 1", custom: ["Flag": .bool]) != nil)
        #expect(failure("Flag = true", custom: ["Flag": .bool]) == nil)
        #expect(failure("Notes = '  '", custom: ["Notes": .text]) != nil)
    }

    @Test func operatorsMustFitTheAttributesType() {
        #expect(failure("Notes > 'a'", custom: ["Notes": .text]) == "invalid query: operator '>' is not supported for Notes, a Text attribute at column 7")
        #expect(failure("Tags < 'a'", custom: ["Tags": .keywordList]) != nil)
        #expect(failure("Tags IN ('a', 'b')", custom: ["Tags": .keywordList]) == nil)
        #expect(failure("Notes IN ('a')", custom: ["Notes": .text]) != nil)
        #expect(failure("Flag BETWEEN true AND false", custom: ["Flag": .bool]) != nil)
        #expect(failure("HistoryLength STARTS_WITH '1'") == "invalid query: operator 'STARTS_WITH' is not supported for HistoryLength, a Int attribute at column 15")
        #expect(failure("WorkflowId NOT STARTS_WITH 'a'") == nil)
        #expect(failure("WorkflowType = 'a' GROUP BY WorkflowType") == "invalid query: GROUP BY takes only ExecutionStatus, not WorkflowType at column 20")
        #expect(failure("ORDER BY WorkflowType") == "invalid query: ORDER BY takes datetime attributes (such as StartTime or CloseTime), and WorkflowType is Keyword at column 10")
        #expect(failure("WorkflowId IS 'a'") == "invalid query: IS can only be followed by NULL or NOT NULL, found the string 'a' at column 15")
    }

    @Test func everyFormOfTheLanguageParses() {
        let accepted = [
            "", "   ", "WorkflowId = 'a'",
            "WorkflowId != 'a' and WorkflowId <> 'b' OR not WorkflowId = 'c'",
            "`WorkflowType` = \"order\"", "WorkflowId = 'it''s' OR WorkflowId = 'it\\'s'",
            "HistoryLength >= 3 AND HistoryLength <= -2 AND HistoryLength < 1.5e3 AND HistoryLength > +4",
            "StartTime BETWEEN '2026-01-01T00:00:00Z' AND '2026-12-31T23:59:59.999Z'",
            "StartTime NOT BETWEEN 0 AND 1000", "WorkflowType IN ('a', 'b', 'c') AND WorkflowId NOT IN ('x')",
            "CloseTime IS NULL OR CloseTime IS NOT NULL", "((((WorkflowId = 'a'))))", "ExecutionDuration > '1h'",
            "GROUP BY ExecutionStatus", "WorkflowType = 'a' GROUP BY ExecutionStatus",
            "ORDER BY StartTime", "WorkflowType = 'a' ORDER BY CloseTime DESC, StartTime asc",
        ]
        for text in accepted { #expect(failure(text) == nil, "\(text)") }
    }

    @Test func nestingIsBoundedInsteadOfExhaustingTheStack() {
        let deep = String(repeating: "(", count: 10_000) + "WorkflowId = 'a'" + String(repeating: ")", count: 10_000)
        #expect(failure(deep)?.contains("nests more than 100 levels deep") == true)
        let nots = String(repeating: "NOT ", count: 10_000) + "WorkflowId = 'a'"
        #expect(failure(nots)?.contains("nests more than 100 levels deep") == true)
    }

    @Test func aSeededMutationSuiteNeverCrashesTheParser() {
        // Mutations of valid queries: each either parses or gets invalidArgument (checked in `failure`).
        let seeds = ["WorkflowType = 'order' AND ExecutionStatus = 'Running' AND StartTime > '2026-12-01T00:00:00Z'",
                     "(WorkflowId IN ('a','b') OR NOT CloseTime IS NULL) ORDER BY StartTime DESC",
                     "ExecutionDuration BETWEEN '1m' AND 3600000000000 GROUP BY ExecutionStatus",
                     "`WorkflowId` STARTS_WITH \"pre\\\"fix\" AND HistoryLength != -1.5e2"]
        var random = SplitMix64(seed: 42)
        let alphabet = Array("()'\"`=!<>,. -+eE0123456789aANDORNOTINISNULLBETWEEN_\\\u{00e9}\u{0}")
        for _ in 0..<5_000 {
            var chars = Array(seeds[Int(random.next() % UInt64(seeds.count))])
            for _ in 0..<(1 + Int(random.next() % 4)) {
                let position = Int(random.next() % UInt64(chars.count + 1))
                switch random.next() % 3 {
                case 0: chars.insert(alphabet[Int(random.next() % UInt64(alphabet.count))], at: position)
                case 1: if position < chars.count { chars.remove(at: position) }
                default: if position < chars.count { chars[position] = alphabet[Int(random.next() % UInt64(alphabet.count))] }
                }
            }
            _ = failure(String(chars))
        }
    }
}
