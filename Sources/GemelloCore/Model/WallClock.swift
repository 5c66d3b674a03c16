#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall-clock time in Unix milliseconds, injected so tests control it.
public protocol WallClock: Sendable {
    func nowMilliseconds() -> Int64
}

/// The system's real-time clock.
public struct SystemWallClock: WallClock {
    public init() {}
    public func nowMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}

/// ISO 8601 UTC rendering of Unix milliseconds (`2021-03-04T05:06:07.000Z`), Foundation-free.
public enum Timestamp {
    public static func iso8601(milliseconds: Int64) -> String {
        String(unsafeUninitializedCapacity: 24) { buffer in
            write(milliseconds: milliseconds, into: UnsafeMutableRawBufferPointer(buffer))
            return 24
        }
    }

    /// Writes the 24 ASCII bytes of ``iso8601(milliseconds:)`` at the start of `out` (years 0…9999).
    @inline(__always)
    public static func write(milliseconds: Int64, into out: UnsafeMutableRawBufferPointer) {
        let seconds = milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000
        let millis = Int(milliseconds - seconds * 1000)
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = Int(seconds - days * 86_400)
        let (year, month, day) = CivilDate.fromDays(days)
        @inline(__always) func digits(_ value: Int, _ count: Int, at offset: Int) {
            var v = Swift.max(0, value)
            for i in stride(from: offset + count - 1, through: offset, by: -1) {
                out[i] = UInt8(truncatingIfNeeded: 0x30 + v % 10)
                v /= 10
            }
        }
        digits(year, 4, at: 0); out[4] = 0x2D
        digits(month, 2, at: 5); out[7] = 0x2D
        digits(day, 2, at: 8); out[10] = 0x54  // T
        digits(secondOfDay / 3600, 2, at: 11); out[13] = 0x3A
        digits(secondOfDay / 60 % 60, 2, at: 14); out[16] = 0x3A
        digits(secondOfDay % 60, 2, at: 17); out[19] = 0x2E
        digits(millis, 3, at: 20); out[23] = 0x5A  // Z
    }
}

/// Proleptic Gregorian calendar arithmetic (Howard Hinnant's algorithms), no time-zone database.
public enum CivilDate {
    /// Days since 1970-01-01 for a calendar date.
    public static func days(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let m = Int64(month)
        let dayOfYear = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The calendar date of a day count since 1970-01-01.
    public static func fromDays(_ days: Int64) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (Int(year), Int(month), Int(day))
    }

    public static func isValid(year: Int, month: Int, day: Int) -> Bool {
        guard (1...12).contains(month), day >= 1 else { return false }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let lengths = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return day <= lengths[month - 1]
    }
}

extension Duration {
    /// Whole milliseconds (truncated), for arithmetic with Unix-millisecond timestamps.
    public var wholeMilliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }

    /// Seconds as a floating-point number, for rates.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
