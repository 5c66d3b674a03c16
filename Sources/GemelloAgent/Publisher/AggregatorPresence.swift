import GemelloCore

/// Which aggregators say they are online (docs/protocol.md): the single aggregator's retained
/// state, or one per member of a group sharing the agents' batches. Batches flow while any of
/// them says `online`. Pure: fed the state messages, no I/O.
struct AggregatorPresence: Sendable, Equatable {
    private var states: [String: Bool] = [:]

    /// Takes a message on an aggregator state topic; an empty payload (a cleared retained state:
    /// a member that left the group for good) forgets that aggregator.
    mutating func update(topic: String, payload: [UInt8]) {
        if payload.isEmpty {
            states[topic] = nil
        } else if let state = AggregatorState.parse(payload) {
            states[topic] = state.online
        }
    }

    /// Online if any known aggregator is; nil while none is known.
    var online: Bool? { states.isEmpty ? nil : states.values.contains(true) }
}
