import GemelloCore
import GemelloNGSILD
import Testing

@Suite struct JSONTests {
    @Test func roundTripsValuesAndEscapes() throws {
        let text = #"{"a":[1,2.5,-0.125,1e3,true,false,null],"b":"é\"\\\n\u0001😀","c":{}}"#
        let value = try JSON.parse(text)
        #expect(value["a"] == [1, 2.5, -0.125, 1000, true, false, nil])
        #expect(value["b"]?.stringValue == "é\"\\\n\u{1}😀")
        #expect(try JSON.parse(value.serialized) == value)
        #expect(JSON.number(3).serialized == "3" && JSON.number(0.1).serialized == "0.1")
        #expect(try JSON.parse(#""\ud83d\ude00""#) == "😀")
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "\"\\x\"", "tru", "[1] 2", "\"\u{1}\"", "\"\\ud800\"", "1e999"])
    func refusesMalformedText(_ text: String) {
        #expect(throws: JSON.ParseError.self) { try JSON.parse(text) }
    }

    @Test func refusesDeepNesting() {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: JSON.ParseError.self) { try JSON.parse(deep) }
        #expect((try? JSON.parse(String(repeating: "[", count: 30) + String(repeating: "]", count: 30))) != nil)
    }

    @Test func dateTimesParseWithZonesOnly() {
        #expect(DateTime.milliseconds("2024-05-01T10:00:00Z") == 1_714_557_600_000)
        #expect(DateTime.milliseconds("2024-05-01T12:00:00.250+02:00") == 1_714_557_600_250)
        #expect(DateTime.milliseconds("2024-05-01T10:00:00") == nil)
        #expect(DateTime.milliseconds("2024-02-30T10:00:00Z") == nil)
        #expect(DateTime.string(milliseconds: 1_714_557_600_250) == "2024-05-01T10:00:00.250Z")
    }
}
