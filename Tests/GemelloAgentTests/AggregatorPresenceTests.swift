@testable import GemelloAgent
import GemelloCore
import Testing

/// The agent's view of the aggregators' states: one aggregator, or a share group's members.
@Suite struct AggregatorPresenceTests {
    static func state(_ online: Bool) -> [UInt8] { Array(AggregatorState(online: online, time: 1).json().utf8) }

    @Test func anyMemberOnlineKeepsBatchesFlowing() {
        var presence = AggregatorPresence()
        #expect(presence.online == nil)
        let a = Topics.aggregatorState(member: "agg-a"), b = Topics.aggregatorState(member: "agg-b")
        presence.update(topic: a, payload: Self.state(true))
        presence.update(topic: b, payload: Self.state(true))
        presence.update(topic: a, payload: Self.state(false))  // a died: its Last Will
        #expect(presence.online == true)
        presence.update(topic: b, payload: Self.state(false))
        #expect(presence.online == false)
        presence.update(topic: b, payload: [])  // b's retained state cleared: it left the group
        presence.update(topic: a, payload: Array("garbage".utf8))  // ignored
        #expect(presence.online == false)
        presence.update(topic: a, payload: [])
        #expect(presence.online == nil)
    }

    @Test func theSingleAggregatorsStateCountsToo() {
        var presence = AggregatorPresence()
        presence.update(topic: Topics.aggregatorState, payload: Self.state(false))
        presence.update(topic: Topics.aggregatorState(member: "agg-a"), payload: Self.state(true))
        #expect(presence.online == true)
        #expect(Topics.isAggregatorState(Topics.aggregatorState) && Topics.isAggregatorState(Topics.aggregatorState(member: "x")))
        #expect(!Topics.isAggregatorState("gemello/v1/aggregator/state/x/y") && !Topics.isAggregatorState("gemello/v1/aggregator/probe/x"))
    }
}
