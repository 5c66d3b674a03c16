@testable import GemelloInputs
import GemelloCore
import Testing

@Suite struct SimulatedInputTests {
    @Test func everyProfileStaysInRangeWithItsUnits() {
        for profile in SimulatedInput.Profile.allCases {
            var generator = SimulatedInput.Generator(profile: profile, sensorID: "s", seed: 1)
            for step in 0..<2000 {
                let readings = generator.sample(at: 1_700_000_000_000 + Int64(step) * 60_000)
                #expect(readings.count == profile.channels.count)
                for (reading, channel) in zip(readings, profile.channels) {
                    #expect(channel.range.contains(reading.value))
                    #expect(UnitCode.isKnown(reading.series.unit))
                }
            }
        }
    }

    @Test func isDeterministicPerSeedAndSensor() {
        var a = SimulatedInput.Generator(profile: .weather, sensorID: "w", seed: 4)
        var b = SimulatedInput.Generator(profile: .weather, sensorID: "w", seed: 4)
        var c = SimulatedInput.Generator(profile: .weather, sensorID: "x", seed: 4)
        let sa = a.sample(at: 0), sb = b.sample(at: 0), sc = c.sample(at: 0)
        #expect(sa.map(\.value) == sb.map(\.value))
        #expect(sa.map(\.value) != sc.map(\.value))
    }
}
