
/// ISO 8601 date-times as NGSI-LD uses them (`observedAt`, `createdAt`, query values).
public enum DateTime {
    /// Unix milliseconds of `YYYY-MM-DDThh:mm:ss[.fff…](Z|±hh:mm)`, or nil. A missing zone is
    /// refused: the spec's DateTime is always in UTC or with an offset.
    public static func milliseconds(_ text: some StringProtocol) -> Int64? {
        let b = Array(text.utf8)
        func num(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var v = 0
            for i in from..<(from + count) {
                guard (0x30...0x39).contains(b[i]) else { return nil }
                v = v * 10 + Int(b[i] - 0x30)
            }
            return v
        }
        guard b.count >= 20, let year = num(0, 4), b[4] == 0x2D, let month = num(5, 2), b[7] == 0x2D, let day = num(8, 2),
              b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t"), let hour = num(11, 2), b[13] == 0x3A,
              let minute = num(14, 2), b[16] == 0x3A, let second = num(17, 2),
              CivilDate.isValid(year: year, month: month, day: day), hour < 24, minute < 60, second < 61 else { return nil }
        var i = 19
        var millis = 0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var scale = 100
            let start = i
            while i < b.count, (0x30...0x39).contains(b[i]) {
                millis += Int(b[i] - 0x30) * scale
                scale /= 10
                i += 1
            }
            guard i > start else { return nil }
        }
        guard i < b.count else { return nil }
        var offsetMinutes = 0
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            let sign = b[i] == UInt8(ascii: "-") ? -1 : 1
            guard let oh = num(i + 1, 2), let om = (i + 3 < b.count && b[i + 3] == 0x3A) ? num(i + 4, 2) : num(i + 3, 2) else { return nil }
            offsetMinutes = sign * (oh * 60 + om)
            i += (i + 3 < b.count && b[i + 3] == 0x3A) ? 6 : 5
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let days = CivilDate.days(year: year, month: month, day: day)
        let seconds = days * 86_400 + Int64(hour * 3600 + minute * 60 + min(second, 59)) - Int64(offsetMinutes * 60)
        return seconds * 1000 + Int64(millis)
    }

    /// `YYYY-MM-DDThh:mm:ss.sssZ`.
    public static func string(milliseconds: Int64) -> String { Timestamp.iso8601(milliseconds: milliseconds) }
}
