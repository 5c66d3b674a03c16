import GemelloCore

extension ModbusInput {
    /// Options of a `modbus` input (this folder's README.md and sample.yaml).
    public struct Configuration: InputOptions {
        public static let type = "modbus"
        public var sensor: SensorInfo
        public var schedule: PollSchedule
        public var endpoint: ModbusEndpoint
        public var unitID: Int
        public var timeout: Duration
        public var retries: Int
        public var canWait: Bool
        public var registers: [ModbusRegister]

        public init(_ section: ConfigSection) throws(CoreError) {
            let sensorID = try section.sensorID()
            let entityType = try section.string("entity-type", default: "DeviceMeasurement")
            schedule = try PollSchedule(section, defaultInterval: .seconds(10))
            let device = try section.string("device")
            if device.hasPrefix("tcp://") {
                let rest = device.dropFirst(6)
                let host: Substring, port: Int?
                if let colon = rest.lastIndex(of: ":") { host = rest[..<colon]; port = Int(rest[rest.index(after: colon)...]) } else { host = rest; port = 502 }
                guard !host.isEmpty, let port, (1...65_535).contains(port) else {
                    throw section.error("device", "not a Modbus TCP address", value: device, fix: "write tcp://host:port (502 when left out)")
                }
                endpoint = .tcp(host: String(host), port: port)
            } else if device.hasPrefix("rtu://") {
                let path = String(device.dropFirst(6))
                guard path.hasPrefix("/") else {
                    throw section.error("device", "not a serial device path", value: device, fix: "write rtu:///dev/ttyUSB0")
                }
                let parity = try section.string("parity", default: "N")
                guard ["N", "E", "O"].contains(parity) else { throw section.error("parity", "must be N, E or O", value: parity) }
                endpoint = .rtu(device: path, baud: try section.int("baud", default: 9600, range: 300...921_600), parity: Character(parity),
                                dataBits: try section.int("data-bits", default: 8, range: 5...8), stopBits: try section.int("stop-bits", default: 1, range: 1...2))
            } else {
                throw section.error("device", "not a Modbus device", value: device, fix: "write tcp://host:port or rtu:///dev/ttyUSB0")
            }
            unitID = try section.int("unit-id", default: 1, range: 0...247)
            timeout = try section.duration("timeout", default: .seconds(1), range: .milliseconds(10)...(.seconds(60)))
            retries = try section.int("retries", default: 1, range: 0...10)
            canWait = try section.bool("can-wait", default: false)
            let byteOrder = try section.choice("byte-order", default: ModbusOrder.big)
            let wordOrder = try section.choice("word-order", default: ModbusOrder.big)
            var registers: [ModbusRegister] = []
            var seen: Set<String> = []
            for entry in try section.sections("registers") {
                let table = try entry.choice("table", default: ModbusTable.holding)
                let type = try entry.choice("type", default: table.isBits ? ModbusValueType.bool : .uint16)
                guard table.isBits == (type == .bool) else {
                    throw entry.error("type", table.isBits ? "\(table.rawValue)s hold bits" : "registers hold numbers, not bits", value: type.rawValue,
                                      fix: table.isBits ? "use type: bool (or leave it out)" : "use int16, uint16, int32, uint32, float32 or float64")
                }
                let register = ModbusRegister(
                    attribute: try entry.attributeName(), table: table,
                    address: try entry.int("address", range: 0...65_535), type: type,
                    byteOrder: try entry.choice("byte-order", default: byteOrder), wordOrder: try entry.choice("word-order", default: wordOrder),
                    scale: try entry.double("scale", default: 1, range: -1e12...1e12), offset: try entry.double("offset", default: 0, range: -1e12...1e12),
                    unit: try entry.optionalString("unit") == nil ? "C62" : try entry.unitCode())
                guard register.address + type.width <= 65_536 else { throw entry.error("address", "the value runs past the last register") }
                guard seen.insert(register.attribute).inserted else {
                    throw entry.error("attribute", "two registers map to the same attribute", value: register.attribute, fix: "give each its own attribute")
                }
                try entry.rejectUnknownKeys()
                registers.append(register)
            }
            guard !registers.isEmpty else {
                throw section.error("registers", "no registers mapped", fix: "list at least one register: attribute, table, address, type")
            }
            self.registers = registers
            sensor = SensorInfo(id: sensorID, entityType: entityType, attributes: registers.map { .init(name: $0.attribute, unit: $0.unit) })
        }

        public func makeInput(_ context: InputContext) -> any Input { ModbusInput(configuration: self, context: context) }
    }
}
