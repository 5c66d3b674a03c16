/// The aggregator's retained online state (as Sparkplug B's host `STATE`): `{"online":true,"time":…}`
/// when it connects, `{"online":false,"time":…}` when it stops, and the same as its Last Will when
/// it vanishes. Agents hold their batches in their own buffer while it is not online, instead of
/// pouring them into a broker queue that may overflow.
public struct AggregatorState: Sendable, Equatable {
    public var online: Bool
    /// Unix milliseconds when the state was set (0 in the Last Will, set before any connection).
    public var time: Int64

    public init(online: Bool, time: Int64) {
        self.online = online
        self.time = time
    }

    public func json() -> String { "{\"online\":\(online),\"time\":\(time)}" }

    /// Reads the payload; `nil` for anything else (an empty payload clears the retained state).
    public static func parse(_ payload: [UInt8]) -> AggregatorState? {
        let text = String(decoding: payload, as: UTF8.self)
        for online in [true, false] {
            let prefix = "{\"online\":\(online),\"time\":"
            guard text.hasPrefix(prefix), text.hasSuffix("}") else { continue }
            guard let time = Int64(text.dropFirst(prefix.count).dropLast()) else { return nil }
            return AggregatorState(online: online, time: time)
        }
        return nil
    }
}
