#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The agent's own footprint for health messages: resident memory, CPU since the last sample,
/// free disk. RSS comes from Linux's `/proc`; elsewhere it is absent.
struct ProcessStats {
    private var lastCPU: Double?
    private var lastSample: ContinuousClock.Instant?

    /// Resident set size in bytes (Linux: `/proc/self/statm` is "size resident ..." in pages), or `nil`.
    static func residentBytes() -> Int64? {
        guard let file = fopen("/proc/self/statm", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 128)
        guard fgets(&line, Int32(line.count), file) != nil else { return nil }
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let fields = text.split(separator: " ")
        guard fields.count >= 2, let pages = Int64(fields[1]) else { return nil }
        return pages * Int64(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Free bytes for an unprivileged writer on the filesystem holding `path`.
    static func diskFreeBytes(at path: String) -> Int64? {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else { return nil }
        return Int64(stats.f_bavail) * Int64(stats.f_frsize)
    }

    /// User + system CPU seconds of this process.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1_000_000 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// CPU used since the previous call, in percent of one core; `nil` on the first call.
    mutating func cpuPercent(now: ContinuousClock.Instant = .now) -> Double? {
        let cpu = Self.cpuSeconds()
        defer { lastCPU = cpu; lastSample = now }
        guard let lastCPU, let lastSample else { return nil }
        let wall = (now - lastSample).seconds
        guard wall > 0 else { return nil }
        return ((cpu - lastCPU) / wall * 1000).rounded() / 10
    }
}
