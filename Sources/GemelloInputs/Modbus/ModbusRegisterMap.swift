import GemelloCore

/// Modbus's four tables.
public enum ModbusTable: String, Sendable, CaseIterable {
    /// Read/write 16-bit registers (function 3): most devices' measurements and settings.
    case holding
    /// Read-only 16-bit registers (function 4).
    case input
    /// Read/write bits (function 1).
    case coil
    /// Read-only bits (function 2).
    case discrete

    var isBits: Bool { self == .coil || self == .discrete }
    /// The most one request may read (the protocol's limits).
    var maxPerRequest: Int { isBits ? 2000 : 125 }
}

/// How a value sits in registers.
public enum ModbusValueType: String, Sendable, CaseIterable {
    case int16, uint16, int32, uint32, float32, float64, bool

    /// Registers (or bits) it spans.
    var width: Int {
        switch self {
        case .int16, .uint16, .bool: return 1
        case .int32, .uint32, .float32: return 2
        case .float64: return 4
        }
    }
}

/// Byte order within each register, or register (word) order within a value.
public enum ModbusOrder: String, Sendable, CaseIterable {
    /// Most significant first: Modbus's own order (ABCD).
    case big
    /// Least significant first (word-swapped CDAB devices set `word-order: little`).
    case little
}

/// One configured value: where it is, how to read it, what it means.
public struct ModbusRegister: Sendable, Equatable {
    public var attribute: String
    public var table: ModbusTable
    /// The PDU address (0-based: holding register 40001 is address 0).
    public var address: Int
    public var type: ModbusValueType
    public var byteOrder: ModbusOrder
    public var wordOrder: ModbusOrder
    public var scale: Double
    public var offset: Double
    public var unit: String

    /// The value of this register from `words` (its own registers, in the device's order).
    public func decode(_ words: ArraySlice<UInt16>) -> Double {
        var regs = Array(words)
        if byteOrder == .little { regs = regs.map { $0.byteSwapped } }
        if wordOrder == .little { regs.reverse() }
        var bits: UInt64 = 0
        for r in regs { bits = bits << 16 | UInt64(r) }
        let raw: Double
        switch type {
        case .int16: raw = Double(Int16(bitPattern: UInt16(truncatingIfNeeded: bits)))
        case .uint16: raw = Double(UInt16(truncatingIfNeeded: bits))
        case .int32: raw = Double(Int32(bitPattern: UInt32(truncatingIfNeeded: bits)))
        case .uint32: raw = Double(UInt32(truncatingIfNeeded: bits))
        case .float32: raw = Double(Float(bitPattern: UInt32(truncatingIfNeeded: bits)))
        case .float64: raw = Double(bitPattern: bits)
        case .bool: raw = bits != 0 ? 1 : 0
        }
        return raw * scale + offset
    }
}

/// The reads a poll makes: each table's registers grouped into as few requests as the protocol
/// allows (contiguous or overlapping spans, at most 125 registers or 2000 bits each, gaps of up
/// to `maxGap` registers read through rather than split).
public struct ModbusReadPlan: Sendable, Equatable {
    public struct Request: Sendable, Equatable {
        public var table: ModbusTable
        public var address: Int
        public var count: Int
        /// Indexes into the register list this request serves.
        public var registers: [Int]
    }

    public var requests: [Request]

    public init(_ registers: [ModbusRegister], maxGap: Int = 8) {
        var requests: [Request] = []
        for table in ModbusTable.allCases {
            let members = registers.indices.filter { registers[$0].table == table }.sorted { registers[$0].address < registers[$1].address }
            var current: Request?
            for index in members {
                let r = registers[index]
                let end = r.address + r.type.width
                if var open = current, r.address <= open.address + open.count + maxGap, end - open.address <= table.maxPerRequest {
                    open.count = max(open.count, end - open.address)
                    open.registers.append(index)
                    current = open
                } else {
                    if let open = current { requests.append(open) }
                    current = Request(table: table, address: r.address, count: r.type.width, registers: [index])
                }
            }
            if let open = current { requests.append(open) }
        }
        self.requests = requests
    }
}
