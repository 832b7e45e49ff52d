#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolMatching
import SpoolPrimitives
import Synchronization

/// Names one task queue of one namespace.
struct TaskQueueSettingKey: Hashable, Sendable, Comparable {
    var namespace: String
    var name: String
    var kind: TaskQueueKind

    static func < (a: TaskQueueSettingKey, b: TaskQueueSettingKey) -> Bool {
        (a.namespace, a.name, a.kind.rawValue) < (b.namespace, b.name, b.kind.rawValue)
    }
}

/// The durable settings of every configured task queue (`DIR/task-queues`), and the rates
/// pollers sent (in memory only: Temporal keeps the latest poller's value the same way).
///
/// Layout (version 1), varints LEB128 (zigzag for signed), strings length-prefixed UTF-8:
/// `"SPTQ"`, version u8, entry count varint; per entry, sorted by (namespace, name, kind):
/// namespace, name, kind u8 (0 workflow, 1 activity); queue rate limit (presence byte; rate as
/// the double's 64 bits, fixed64 little endian; reason; update identity; update time signed ns);
/// partitions (presence byte; varint); pause (presence byte; reason; identity; time signed ns);
/// from version 2, appended to each entry: the per-fairness-key rate limit (presence byte, then
/// as the queue rate limit, written by `writeFairnessKeyRateLimit`); then a CRC32C (u32 little endian) of every byte before it. Replaced through `AtomicFile`
/// (`task-queues.tmp`, fsync, rename, directory fsync; mode 0600).
struct TaskQueueSettingsFile {
    static let fileName = "task-queues"
    static let magic: [UInt8] = Array("SPTQ".utf8)
    /// Written; 1 (no per-key rate) is still read.
    static let version: UInt8 = 2

    static func encode(_ configs: [TaskQueueSettingKey: TaskQueueConfig]) -> [UInt8] {
        var w = BinaryWriter(capacity: 64 + configs.count * 64)
        w.raw(magic)
        w.byte(version)
        let keys = configs.keys.filter { !(configs[$0]?.isEmpty ?? true) }.sorted()
        w.count(keys.count)
        for key in keys {
            guard let config = configs[key] else { continue }
            w.string(key.namespace); w.string(key.name); w.byte(key.kind.rawValue)
            w.optional(config.queueRateLimit) { w, limit in
                w.fixed64(limit.requestsPerSecond.bitPattern); w.string(limit.reason); w.string(limit.updateIdentity)
                w.timestamp(limit.updateTime)
            }
            w.optional(config.partitions) { $0.count($1) }
            w.optional(config.pause) { w, pause in
                w.string(pause.reason); w.string(pause.identity); w.timestamp(pause.time)
            }
            writeFairnessKeyRateLimit(config.fairnessKeyRateLimit, to: &w)
        }
        var bytes = w.bytes
        let crc = CRC32C.checksum(bytes)
        withUnsafeBytes(of: crc.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }

    static func writeRateLimit(_ limit: TaskQueueRateLimitConfig, to w: inout BinaryWriter) {
        w.fixed64(limit.requestsPerSecond.bitPattern); w.string(limit.reason); w.string(limit.updateIdentity)
        w.timestamp(limit.updateTime)
    }

    /// The fields version 2 appends to an entry.
    static func writeFairnessKeyRateLimit(_ limit: TaskQueueRateLimitConfig?, to w: inout BinaryWriter) {
        w.optional(limit) { w, limit in writeRateLimit(limit, to: &w) }
    }

    static func readRateLimit(_ r: inout BinaryReader<SpoolError>) throws(SpoolError) -> TaskQueueRateLimitConfig {
        let rate = Double(bitPattern: try r.fixed64())
        guard rate.isFinite, rate >= 0 else { throw r.corrupt("a rate limit of \(rate) is not a finite number ≥ 0") }
        return TaskQueueRateLimitConfig(requestsPerSecond: rate, reason: try r.string(), updateIdentity: try r.string(), updateTime: try r.timestamp())
    }

    /// - Throws: ``SpoolError/Code/corruptRecord`` naming the file when it does not decode.
    static func decode(_ bytes: [UInt8], path: String) throws(SpoolError) -> [TaskQueueSettingKey: TaskQueueConfig] {
        func damaged(_ what: String) -> SpoolError {
            SpoolError(.corruptRecord, "\(path): \(what); move the file aside to open the directory without task queue settings")
        }
        guard bytes.count >= 9, Array(bytes.prefix(4)) == magic else { throw damaged("not a task queue settings file") }
        let end = bytes.count - 4
        let stored = bytes[end...].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }.littleEndian
        let crc = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[..<end])) }
        guard crc == stored else { throw damaged("its checksum does not match") }
        var r = BinaryReader<SpoolError>(Array(bytes[4..<end]), context: path)
        var configs: [TaskQueueSettingKey: TaskQueueConfig] = [:]
        do throws(SpoolError) {
            let version = try r.byte()
            guard (1...Self.version).contains(version) else { throw damaged("version \(version) is not one this build reads (1, 2)") }
            for _ in 0..<(try r.count()) {
                let key = TaskQueueSettingKey(namespace: try r.string(), name: try r.string(), kind: try r.enumeration(TaskQueueKind.self))
                var config = TaskQueueConfig()
                config.queueRateLimit = try r.optional { r throws(SpoolError) in
                    TaskQueueRateLimitConfig(requestsPerSecond: Double(bitPattern: try r.fixed64()), reason: try r.string(),
                                             updateIdentity: try r.string(), updateTime: try r.timestamp())
                }
                config.partitions = try r.optional { r throws(SpoolError) -> Int in
                    let count = try r.unsigned()
                    guard (1...64).contains(count) else { throw r.corrupt("\(count) partitions is outside 1…64") }
                    return Int(count)
                }
                config.pause = try r.optional { r throws(SpoolError) in
                    TaskQueuePauseConfig(reason: try r.string(), identity: try r.string(), time: try r.timestamp())
                }
                if version >= 2 {
                    config.fairnessKeyRateLimit = try r.optional { r throws(SpoolError) in try readRateLimit(&r) }
                }
                configs[key] = config
            }
            guard r.isAtEnd else { throw damaged("bytes are left after its last entry") }
        } catch where error.code == .corruptRecord && !error.message.hasPrefix(path) {
            throw damaged(error.message)
        }
        return configs
    }
}

/// The engine's task queue settings: the durable configurations and the pollers' rates.
final class TaskQueueSettings: Sendable {
    /// The queue-wide rate a queue's latest poller sent, and when it last sent it.
    struct PollerRate {
        var rate: Double
        var sentAt: MatchingInstant
    }

    struct State {
        var configs: [TaskQueueSettingKey: TaskQueueConfig] = [:]
        /// The latest rate each queue's pollers sent.
        var pollerRates: [TaskQueueSettingKey: PollerRate] = [:]

        /// The pollers' rate, unless its sender has not polled with it within the poller history
        /// TTL (Temporal's `pollerHistoryTTL`, 5 minutes), after which it no longer counts.
        func pollerRate(_ key: TaskQueueSettingKey, now: MatchingInstant) -> Double? {
            guard let sent = pollerRates[key], now.duration(since: sent.sentAt) < TaskPoller.historyTTL else { return nil }
            return sent.rate
        }

        /// The rate dispatch enforces: the configured one, else the latest live poller's.
        func effectiveRate(_ key: TaskQueueSettingKey, now: MatchingInstant) -> Double? {
            configs[key]?.queueRateLimit?.requestsPerSecond ?? pollerRate(key, now: now)
        }
        /// The rate last given to each queue's matcher (nil: none), to skip needless updates.
        var applied: [TaskQueueSettingKey: Double?] = [:]
    }

    let state = LockedValue(State())
    /// Serialises writers of the file (a write and its in-memory update happen together).
    let writeLock = ThreadLock()

    /// Queues with a poller rate recorded: while 0, polls without a rate skip the expiry check.
    let pollerRateCount = Atomic<Int>(0)

    func config(_ key: TaskQueueSettingKey) -> TaskQueueConfig { state.withLock { $0.configs[key] ?? TaskQueueConfig() } }
    var allConfigs: [TaskQueueSettingKey: TaskQueueConfig] { state.withLock { $0.configs } }
}
