import GemelloCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a Modbus device is.
public enum ModbusEndpoint: Sendable, Equatable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case rtu(device: String, baud: Int, parity: Character, dataBits: Int, stopBits: Int)

    public var description: String {
        switch self {
        case .tcp(let host, let port): return "tcp://\(host):\(port)"
        case .rtu(let device, let baud, let parity, let dataBits, let stopBits): return "rtu://\(device) (\(baud) \(dataBits)\(parity)\(stopBits))"
        }
    }
}

/// An open Modbus link (libmodbus's, provided by the agent). Blocking; used from one thread at a time.
public protocol ModbusLink: AnyObject, Sendable {
    /// Registers (holding, input) or bits as 0/1 (coils, discrete inputs).
    func read(_ table: ModbusTable, address: Int, count: Int) throws -> [UInt16]
    func close()
}

/// Opens Modbus links.
public protocol ModbusConnector: Sendable {
    func connect(_ endpoint: ModbusEndpoint, unitID: Int, timeout: Duration) throws -> any ModbusLink
}

/// Reads a Modbus device's registers (TCP, or RTU over RS-485) every interval: a rectifier, a
/// battery monitor, an energy meter, a level or flow sensor. Register maps come from the
/// configuration: table, address, type, byte and word order, scale, offset, unit, attribute.
/// Requests are grouped (``ModbusReadPlan``); each exchange has a timeout and is retried; a
/// device that stops answering fails its polls (reported in health with the reason), never
/// blocks the other inputs (its I/O runs on a thread of its own), and is reconnected at the next
/// poll.
///
/// It can wait when the device keeps its state (`can-wait: true`: counters, totals): while the
/// buffer is full its polls are skipped instead of their readings dropped.
public struct ModbusInput: PolledInput {
    public let configuration: Configuration
    public let clock: any WallClock
    let connector: (any ModbusConnector)?
    public var sensor: SensorInfo { configuration.sensor }
    public var schedule: PollSchedule { configuration.schedule }
    public var canWait: Bool { configuration.canWait }

    public init(configuration: Configuration, context: InputContext) {
        self.configuration = configuration
        self.clock = context.clock
        self.connector = context.modbus
    }

    public func makePoller() throws -> Poller {
        guard let connector else {
            throw InputError("modbus '\(configuration.sensor.id)': this agent was built without Modbus support")
        }
        return Poller(configuration: configuration, connector: connector, plan: ModbusReadPlan(configuration.registers),
                      series: configuration.registers.map { SeriesInfo(name: "\(configuration.sensor.id)/\($0.attribute)", unit: $0.unit) })
    }

    public struct Poller: InputPoller {
        let configuration: Configuration
        let connector: any ModbusConnector
        let plan: ModbusReadPlan
        let series: [SeriesInfo]
        /// Kept open between polls; dropped after a failure.
        let link = LinkHolder()

        public mutating func poll(now: Int64) async throws -> [Reading] {
            let (c, connector, plan, series, link) = (configuration, connector, plan, series, link)
            let result = await Blocking.run { () -> Result<[Reading], InputError> in
                var lastError = ""
                for attempt in 0...c.retries {
                    do {
                        let open = try link.current ?? {
                            let opened = try connector.connect(c.endpoint, unitID: c.unitID, timeout: c.timeout)
                            link.current = opened
                            return opened
                        }()
                        var words = [UInt16](repeating: 0, count: c.registers.count * 4)
                        var readings: [Reading] = []
                        readings.reserveCapacity(c.registers.count)
                        for request in plan.requests {
                            let values = try open.read(request.table, address: request.address, count: request.count)
                            for index in request.registers {
                                let r = c.registers[index]
                                let start = r.address - request.address
                                words.replaceSubrange(0..<r.type.width, with: values[start..<(start + r.type.width)])
                                readings.append(Reading(series: series[index], timestamp: now, value: r.decode(words[0..<r.type.width])))
                            }
                        }
                        return .success(readings)
                    } catch {
                        lastError = "\(error)"
                        link.current?.close()
                        link.current = nil
                        if attempt < c.retries { usleep(UInt32(min(1_000_000, 100_000 * (attempt + 1)))) }
                    }
                }
                return .failure(InputError("modbus '\(c.sensor.id)' at \(c.endpoint) unit \(c.unitID): \(lastError) (after \(c.retries + 1) attempts)"))
            }
            return try result.get()
        }
    }

    /// The open link between polls.
    final class LinkHolder: @unchecked Sendable {
        // @unchecked: used by one poll at a time (polls of an input never overlap).
        var current: (any ModbusLink)?
        deinit { current?.close() }
    }
}
