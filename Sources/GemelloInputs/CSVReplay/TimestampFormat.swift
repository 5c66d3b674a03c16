import GemelloCore

/// A fixed-width timestamp pattern (`yyyy-MM-dd HH:mm:ss`, `dd/MM/yyyy HH.mm.ss`, with literal
/// text such as ` UTC`) and the fixed UTC offset the local times are in.
///
/// Why fixed offsets and not zone names: resolving `Europe/Rome` needs a time-zone database and
/// its daylight-saving rules, which the datasets do not state either (see the input's README).
public struct TimestampFormat: Sendable {
    enum Token: Sendable, Equatable {
        case year, month, day, hour, minute, second
        case literal(UInt8)

        var width: Int {
            switch self {
            case .year: return 4
            case .literal: return 1
            default: return 2
            }
        }
    }

    let tokens: [Token]
    /// Seconds to subtract from the local time to get UTC.
    public let utcOffsetSeconds: Int64

    public init?(pattern: String, zone: String) {
        var tokens: [Token] = []
        var rest = Substring(pattern)
        let named: [(String, Token)] = [("yyyy", .year), ("MM", .month), ("dd", .day), ("HH", .hour), ("mm", .minute), ("ss", .second)]
        outer: while !rest.isEmpty {
            for (text, token) in named where rest.hasPrefix(text) {
                tokens.append(token)
                rest = rest.dropFirst(text.count)
                continue outer
            }
            for byte in String(rest.first!).utf8 { tokens.append(.literal(byte)) }
            rest = rest.dropFirst()
        }
        for required in [Token.year, .month, .day] where !tokens.contains(required) { return nil }
        guard let offset = Self.parseZone(zone) else { return nil }
        self.tokens = tokens
        self.utcOffsetSeconds = offset
    }

    static func parseZone(_ zone: String) -> Int64? {
        if zone == "UTC" || zone == "Z" || zone == "GMT" { return 0 }
        let bytes = Array(zone.utf8)
        guard bytes.count == 6, bytes[0] == UInt8(ascii: "+") || bytes[0] == UInt8(ascii: "-"), bytes[3] == UInt8(ascii: ":"),
              let hours = Int64(String(decoding: bytes[1...2], as: UTF8.self)),
              let minutes = Int64(String(decoding: bytes[4...5], as: UTF8.self)), hours <= 14, minutes < 60 else { return nil }
        let sign: Int64 = bytes[0] == UInt8(ascii: "-") ? -1 : 1
        return sign * (hours * 3600 + minutes * 60)
    }

    /// Unix milliseconds (UTC) for `text`, or `nil` when it does not match the pattern.
    public func parse(_ text: some Collection<UInt8>) -> Int64? {
        var fields = [Int](repeating: 0, count: 6)  // year month day hour minute second
        var index = text.startIndex
        for token in tokens {
            if case .literal(let byte) = token {
                guard index != text.endIndex, text[index] == byte else { return nil }
                index = text.index(after: index)
                continue
            }
            var value = 0
            for _ in 0..<token.width {
                guard index != text.endIndex else { return nil }
                let digit = Int(text[index]) - 48
                guard (0...9).contains(digit) else { return nil }
                value = value * 10 + digit
                index = text.index(after: index)
            }
            switch token {
            case .year: fields[0] = value
            case .month: fields[1] = value
            case .day: fields[2] = value
            case .hour: fields[3] = value
            case .minute: fields[4] = value
            case .second: fields[5] = value
            case .literal: break
            }
        }
        guard index == text.endIndex, CivilDate.isValid(year: fields[0], month: fields[1], day: fields[2]),
              fields[3] < 24, fields[4] < 60, fields[5] < 61 else { return nil }
        let days = CivilDate.days(year: fields[0], month: fields[1], day: fields[2])
        let seconds = days * 86_400 + Int64(fields[3] * 3600 + fields[4] * 60 + fields[5]) - utcOffsetSeconds
        return seconds * 1000
    }
}
