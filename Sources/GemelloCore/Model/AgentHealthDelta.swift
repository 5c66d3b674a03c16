/// A health delta (docs/protocol.md, "Live rate"): between two full reports an agent sends
/// only what changed *significantly* since the view the aggregator holds (the last full report
/// with the deltas after it applied), or nothing when nothing did and its batches already show it
/// is alive. Counters that only grow (`readingsAccepted`, `readingsDelivered`, inputs' `readings`)
/// travel in the full reports; the aggregator counts what it stores itself.
///
/// JSON: `{"delta":true,"bootEpoch":E, …the changed fields of AgentHealth, same names…}`; `inputs`
/// lists only the inputs whose errors, last error or pause changed (each complete). No agent id:
/// the topic names it.
public struct AgentHealthDelta: Codable, Sendable, Equatable {
    public var delta: Bool = true
    public var bootEpoch: UInt64
    public var readingsBuffered: Int64?
    public var readingsDropped: Int64?
    public var bufferedBytes: Int64?
    public var oldestUnsentSeconds: Double?
    public var diskFreeBytes: Int64?
    public var rssBytes: Int64?
    public var cpuPercent: Double?
    public var reconnects: Int64?
    public var bufferPaused: Bool?
    public var inputs: [InputHealth]?

    public init(bootEpoch: UInt64) { self.bootEpoch = bootEpoch }

    /// Nothing but the epoch: a heartbeat.
    public var isEmpty: Bool { self == AgentHealthDelta(bootEpoch: bootEpoch) }

    /// What is significant in `current` against `sent` (the view the aggregator holds):
    /// dropped readings, reconnects, a pause or its end, an input's errors, last error or pause:
    /// any change; buffered readings: ±10 % and at least 100; the oldest unsent reading: once it
    /// is a minute old, ±10 % (and its return under a minute); free disk ±1 %; resident memory
    /// ±10 %; CPU ±5 points.
    public static func between(_ sent: AgentHealth, _ current: AgentHealth) -> AgentHealthDelta {
        var delta = AgentHealthDelta(bootEpoch: current.bootEpoch)
        if current.readingsDropped != sent.readingsDropped { delta.readingsDropped = current.readingsDropped }
        if current.reconnects != sent.reconnects { delta.reconnects = current.reconnects }
        if (current.bufferPaused ?? false) != (sent.bufferPaused ?? false) { delta.bufferPaused = current.bufferPaused ?? false }
        let buffered = abs(current.readingsBuffered - sent.readingsBuffered)
        if buffered >= 100 && Double(buffered) >= 0.1 * Double(max(current.readingsBuffered, sent.readingsBuffered)) {
            delta.readingsBuffered = current.readingsBuffered
            delta.bufferedBytes = current.bufferedBytes
        }
        if let now = current.oldestUnsentSeconds {
            let before = sent.oldestUnsentSeconds ?? 0
            if (now >= 60 && abs(now - before) >= 0.1 * max(now, before)) || (now < 60 && before >= 60) {
                delta.oldestUnsentSeconds = now
            }
        }
        if changed(current.diskFreeBytes, sent.diskFreeBytes, by: 0.01) { delta.diskFreeBytes = current.diskFreeBytes }
        if changed(current.rssBytes, sent.rssBytes, by: 0.1) { delta.rssBytes = current.rssBytes }
        if let cpu = current.cpuPercent, abs(cpu - (sent.cpuPercent ?? 0)) >= 5 { delta.cpuPercent = cpu }
        if let inputs = current.inputs {
            let before = sent.inputs ?? []
            let changedInputs = inputs.filter { input in
                guard let old = before.first(where: { $0.sensor == input.sensor && $0.type == input.type }) else { return true }
                return old.errors != input.errors || old.lastError != input.lastError || (old.paused ?? false) != (input.paused ?? false)
            }
            if !changedInputs.isEmpty { delta.inputs = changedInputs }
        }
        return delta
    }

    private static func changed(_ current: Int64?, _ sent: Int64?, by fraction: Double) -> Bool {
        guard let current else { return false }
        guard let sent, sent != 0 else { return current != sent }
        return Double(abs(current - sent)) >= fraction * Double(abs(sent))
    }

    /// `base` with this delta applied: the view of the agent after it. `time` becomes `now` (the
    /// receiver's clock) and the uptime grows by the time since the base.
    public func applied(to base: AgentHealth, now: Int64) -> AgentHealth {
        var health = base
        health.uptimeSeconds = base.uptimeSeconds + max(0, now - base.time) / 1000
        health.time = now
        if let readingsBuffered { health.readingsBuffered = readingsBuffered }
        if let readingsDropped { health.readingsDropped = readingsDropped }
        if let bufferedBytes { health.bufferedBytes = bufferedBytes }
        if let oldestUnsentSeconds { health.oldestUnsentSeconds = oldestUnsentSeconds }
        if let diskFreeBytes { health.diskFreeBytes = diskFreeBytes }
        if let rssBytes { health.rssBytes = rssBytes }
        if let cpuPercent { health.cpuPercent = cpuPercent }
        if let reconnects { health.reconnects = reconnects }
        if let bufferPaused { health.bufferPaused = bufferPaused ? true : nil }
        if let inputs {
            var merged = base.inputs ?? []
            for input in inputs {
                if let i = merged.firstIndex(where: { $0.sensor == input.sensor && $0.type == input.type }) {
                    merged[i] = input
                } else {
                    merged.append(input)
                }
            }
            health.inputs = merged
        }
        // Latencies are averages since the previous full report: not carried over.
        health.ackLatencyMeanMilliseconds = nil
        health.ackLatencyMaxMilliseconds = nil
        return health
    }

    public func json() -> String {
        var writer = JSONWriter()
        writer.field("delta", true)
        writer.field("bootEpoch", bootEpoch)
        if let readingsBuffered { writer.field("readingsBuffered", readingsBuffered) }
        if let readingsDropped { writer.field("readingsDropped", readingsDropped) }
        if let bufferedBytes { writer.field("bufferedBytes", bufferedBytes) }
        if let oldestUnsentSeconds { writer.field("oldestUnsentSeconds", oldestUnsentSeconds) }
        if let diskFreeBytes { writer.field("diskFreeBytes", diskFreeBytes) }
        if let rssBytes { writer.field("rssBytes", rssBytes) }
        if let cpuPercent { writer.field("cpuPercent", cpuPercent) }
        if let reconnects { writer.field("reconnects", reconnects) }
        if let bufferPaused { writer.field("bufferPaused", bufferPaused) }
        if let inputs { writer.field("inputs", raw: "[" + inputs.map { $0.json() }.joined(separator: ",") + "]") }
        return writer.finished()
    }

    /// True when a health payload is a delta: an object whose `delta` is `true`, wherever the
    /// key stands (``json()`` writes it first; another implementation need not).
    public static func isDelta(_ payload: [UInt8]) -> Bool {
        if payload.starts(with: Array("{\"delta\":true".utf8)) { return true }
        return (try? JSON.parse(payload))?["delta"] == .bool(true)
    }
}
