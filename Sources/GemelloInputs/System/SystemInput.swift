import GemelloCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The box the agent runs on, from `/proc` and `/sys`: CPU, memory, load, disks, network
/// interfaces (bytes and errors), hwmon temperatures, power supplies (battery, mains) and uptime;
/// the figures collectd's cpu, memory, interface and load plugins give, and a little more.
///
/// It cannot wait: it shows only the present, so while the buffer is full its readings meet the
/// buffer's overflow policy.
public struct SystemInput: PolledInput {
    public let configuration: Configuration
    public let clock: any WallClock
    public var sensor: SensorInfo { configuration.sensor }
    public var schedule: PollSchedule { configuration.schedule }

    public init(configuration: Configuration, clock: any WallClock) {
        self.configuration = configuration
        self.clock = clock
    }

    public func makePoller() -> Poller { Poller(configuration: configuration) }

    /// Keeps the previous CPU counters (usage is a rate between two polls).
    public struct Poller: InputPoller {
        let configuration: Configuration
        var previousCPU: SystemFigures.CPUTimes?
        /// Series made once per attribute name.
        var series: [String: SeriesInfo] = [:]

        public mutating func poll(now: Int64) async throws -> [Reading] {
            let figures = try SystemFigures.read(configuration, previousCPU: &previousCPU)
            var readings: [Reading] = []
            readings.reserveCapacity(figures.count)
            for figure in figures {
                let info: SeriesInfo
                if let known = series[figure.attribute] {
                    info = known
                } else {
                    info = SeriesInfo(name: "\(configuration.sensor.id)/\(figure.attribute)", unit: figure.unit)
                    series[figure.attribute] = info
                }
                readings.append(Reading(series: info, timestamp: now, value: figure.value))
            }
            return readings
        }
    }
}

/// One figure of the box: an NGSI-LD attribute name, a UN/CEFACT unit and a value.
public struct SystemFigure: Sendable, Equatable, CustomStringConvertible {
    public var attribute: String
    public var unit: String
    public var value: Double

    public var description: String { "\(attribute) \(value) \(unit)" }
}

/// Reads and parses the kernel's files (pure functions of their text, tested on golden copies).
public enum SystemFigures {
    /// `/proc/stat`'s first line, in clock ticks.
    public struct CPUTimes: Sendable, Equatable {
        public var user, nice, system, idle, iowait, irq, softirq, steal: UInt64
        var busy: UInt64 { user &+ nice &+ system &+ irq &+ softirq &+ steal }
        var total: UInt64 { busy &+ idle &+ iowait }
    }

    /// Everything the configuration asks for; a group whose files are missing or unreadable
    /// yields nothing (a box without hwmon or a battery), but a box without `/proc/stat` is an error.
    static func read(_ c: SystemInput.Configuration, previousCPU: inout CPUTimes?) throws -> [SystemFigure] {
        var figures: [SystemFigure] = []
        let groups = c.groups
        if groups.contains(.cpu) {
            let text: String
            do { text = try FileText.read(c.procRoot + "/stat") } catch {
                throw InputError("system: cannot read \(c.procRoot)/stat: \(error.reason). Fix: set proc-root to where /proc is mounted")
            }
            if let now = cpuTimes(text) {
                if let before = previousCPU { figures += cpuUsage(from: before, to: now) }
                previousCPU = now
            }
        }
        if groups.contains(.memory), let text = try? FileText.read(c.procRoot + "/meminfo") { figures += memory(text) }
        if groups.contains(.load), let text = try? FileText.read(c.procRoot + "/loadavg") { figures += load(text) }
        if groups.contains(.uptime), let text = try? FileText.read(c.procRoot + "/uptime") { figures += uptime(text) }
        if groups.contains(.disks) {
            for mount in c.disks { figures += disk(mount) }
        }
        if groups.contains(.interfaces), let text = try? FileText.read(c.procRoot + "/net/dev") {
            figures += interfaces(text, only: c.interfaces)
        }
        if groups.contains(.temperatures) { figures += temperatures(sysRoot: c.sysRoot) }
        if groups.contains(.power) { figures += powerSupplies(sysRoot: c.sysRoot) }
        return figures
    }

    public static func cpuTimes(_ stat: String) -> CPUTimes? {
        guard let line = stat.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) else { return nil }
        let f = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
        guard f.count >= 4 else { return nil }
        func at(_ i: Int) -> UInt64 { i < f.count ? f[i] : 0 }
        return CPUTimes(user: at(0), nice: at(1), system: at(2), idle: at(3), iowait: at(4), irq: at(5), softirq: at(6), steal: at(7))
    }

    /// Percent of all CPUs' time between two samples (the way collectd's cpu plugin reports
    /// with `ValuesPercentage true`, `ReportByCpu false`).
    public static func cpuUsage(from a: CPUTimes, to b: CPUTimes) -> [SystemFigure] {
        guard b.total > a.total else { return [] }
        let span = Double(b.total - a.total)
        func share(_ x: UInt64, _ y: UInt64) -> Double { rounded(Double(y >= x ? y - x : 0) / span * 100, 2) }
        return [
            SystemFigure(attribute: "cpuUsage", unit: "P1", value: share(a.busy, b.busy)),
            SystemFigure(attribute: "cpuUser", unit: "P1", value: share(a.user &+ a.nice, b.user &+ b.nice)),
            SystemFigure(attribute: "cpuSystem", unit: "P1", value: share(a.system &+ a.irq &+ a.softirq, b.system &+ b.irq &+ b.softirq)),
            SystemFigure(attribute: "cpuIowait", unit: "P1", value: share(a.iowait, b.iowait)),
            SystemFigure(attribute: "cpuSteal", unit: "P1", value: share(a.steal, b.steal)),
        ]
    }

    /// `/proc/meminfo` (kB) → bytes; "used" as `free(1)` counts it: total − available.
    public static func memory(_ text: String) -> [SystemFigure] {
        var kb: [Substring: Double] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count >= 2, parts[0].hasSuffix(":"), let value = Double(parts[1]) else { continue }
            kb[parts[0].dropLast()] = value
        }
        guard let total = kb["MemTotal"], total > 0 else { return [] }
        let available = kb["MemAvailable"] ?? ((kb["MemFree"] ?? 0) + (kb["Buffers"] ?? 0) + (kb["Cached"] ?? 0))
        var figures = [
            SystemFigure(attribute: "memoryTotal", unit: "AD", value: total * 1024),
            SystemFigure(attribute: "memoryAvailable", unit: "AD", value: available * 1024),
            SystemFigure(attribute: "memoryUsed", unit: "AD", value: (total - available) * 1024),
            SystemFigure(attribute: "memoryUsage", unit: "P1", value: rounded((total - available) / total * 100, 2)),
        ]
        if let swapTotal = kb["SwapTotal"], let swapFree = kb["SwapFree"] {
            figures.append(SystemFigure(attribute: "swapUsed", unit: "AD", value: (swapTotal - swapFree) * 1024))
        }
        return figures
    }

    public static func load(_ text: String) -> [SystemFigure] {
        let f = text.split(separator: " ").prefix(3).compactMap { Double($0) }
        guard f.count == 3 else { return [] }
        return zip(["load1", "load5", "load15"], f).map { SystemFigure(attribute: $0, unit: "C62", value: $1) }
    }

    public static func uptime(_ text: String) -> [SystemFigure] {
        guard let seconds = text.split(separator: " ").first.flatMap({ Double($0) }) else { return [] }
        return [SystemFigure(attribute: "uptime", unit: "SEC", value: seconds.rounded(.down))]
    }

    /// Free bytes (for an unprivileged process, as `df` shows) and percent used of a mount.
    public static func disk(_ mount: String) -> [SystemFigure] {
        var info = statvfs()
        guard statvfs(mount, &info) == 0, info.f_blocks > 0 else { return [] }
        let block = Double(info.f_frsize)
        let total = Double(info.f_blocks) * block, free = Double(info.f_bfree) * block, available = Double(info.f_bavail) * block
        let used = total - free
        let name = instance(mount == "/" ? "root" : String(mount.drop { $0 == "/" }))
        return [
            SystemFigure(attribute: "diskFree_\(name)", unit: "AD", value: available),
            SystemFigure(attribute: "diskUsage_\(name)", unit: "P1", value: rounded(used / (used + available) * 100, 2)),
        ]
    }

    /// `/proc/net/dev`: cumulative bytes and errors each way (counters, as the kernel keeps them:
    /// the twin's history turns them into rates; they survive the agent's restarts unchanged).
    public static func interfaces(_ text: String, only: [String]?) -> [SystemFigure] {
        var figures: [SystemFigure] = []
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmingCharacters(in: " ")
            guard !name.isEmpty, !name.contains("|") else { continue }
            if let only { guard only.contains(name) else { continue } } else if name == "lo" { continue }
            let f = line[line.index(after: colon)...].split(separator: " ").compactMap { Double($0) }
            guard f.count >= 16 else { continue }
            let n = instance(name)
            figures += [
                SystemFigure(attribute: "rxBytes_\(n)", unit: "AD", value: f[0]),
                SystemFigure(attribute: "rxErrors_\(n)", unit: "C62", value: f[2]),
                SystemFigure(attribute: "txBytes_\(n)", unit: "AD", value: f[8]),
                SystemFigure(attribute: "txErrors_\(n)", unit: "C62", value: f[10]),
            ]
        }
        return figures
    }

    /// `/sys/class/hwmon/*/temp*_input` (millidegrees) named by the chip's `name` and the
    /// sensor's `temp*_label` when there is one.
    public static func temperatures(sysRoot: String) -> [SystemFigure] {
        var figures: [SystemFigure] = []
        let base = sysRoot + "/class/hwmon"
        for chip in entries(base) where chip.hasPrefix("hwmon") {
            let folder = base + "/" + chip
            let chipName = (try? FileText.read(folder + "/name"))?.trimmingCharacters(in: " \n") ?? chip
            for file in entries(folder) where file.hasPrefix("temp") && file.hasSuffix("_input") {
                guard let text = try? FileText.read(folder + "/" + file), let milli = Double(text.trimmingCharacters(in: " \n")) else { continue }
                let index = file.dropFirst(4).dropLast(6)
                let label = (try? FileText.read(folder + "/temp\(index)_label"))?.trimmingCharacters(in: " \n")
                let name = instance(chipName + "_" + (label.map { $0.isEmpty ? String(index) : $0 } ?? String(index)))
                figures.append(SystemFigure(attribute: "temperature_\(name)", unit: "CEL", value: milli / 1000))
            }
        }
        return figures
    }

    /// `/sys/class/power_supply/*`: a battery's charge (percent), voltage and current; whether
    /// mains is present (`online`, 1 or 0).
    public static func powerSupplies(sysRoot: String) -> [SystemFigure] {
        var figures: [SystemFigure] = []
        let base = sysRoot + "/class/power_supply"
        for supply in entries(base) {
            let folder = base + "/" + supply
            func number(_ file: String) -> Double? {
                (try? FileText.read(folder + "/" + file)).flatMap { Double($0.trimmingCharacters(in: " \n")) }
            }
            let n = instance(supply)
            if let capacity = number("capacity") { figures.append(SystemFigure(attribute: "batteryLevel_\(n)", unit: "P1", value: capacity)) }
            if let microvolts = number("voltage_now") { figures.append(SystemFigure(attribute: "voltage_\(n)", unit: "VLT", value: microvolts / 1_000_000)) }
            if let microamps = number("current_now") { figures.append(SystemFigure(attribute: "current_\(n)", unit: "AMP", value: microamps / 1_000_000)) }
            if let online = number("online") { figures.append(SystemFigure(attribute: "powerOnline_\(n)", unit: "C62", value: online)) }
        }
        return figures
    }

    /// An attribute suffix from a device name: letters and digits kept, anything else `_`,
    /// at most 40 characters (the attribute stays within NGSI-LD's 64).
    static func instance(_ name: String) -> String {
        String(name.unicodeScalars.prefix(40).map { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)) ? Character($0) : "_" })
    }

    static func rounded(_ value: Double, _ decimals: Int) -> Double {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        return (value * scale).rounded() / scale
    }

    /// The names in a folder, sorted; empty when it cannot be read.
    static func entries(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }
}

extension StringProtocol {
    /// Without leading and trailing characters from `set`.
    func trimmingCharacters(in set: String) -> String {
        let scalars = Set(set.unicodeScalars)
        var view = Substring(self).unicodeScalars[...]
        while let first = view.first, scalars.contains(first) { view = view.dropFirst() }
        while let last = view.last, scalars.contains(last) { view = view.dropLast() }
        return String(String.UnicodeScalarView(view))
    }
}
