import GemelloCore
@testable import GemelloInputs
import Testing

/// Register decoding for every type and order, against words worked out by hand from IEEE 754
/// and two's complement, and the grouping of reads into requests.
@Suite struct ModbusRegisterTests {
    static func register(_ type: ModbusValueType, byte: ModbusOrder = .big, word: ModbusOrder = .big,
                         scale: Double = 1, offset: Double = 0, address: Int = 0, table: ModbusTable = .holding) -> ModbusRegister {
        ModbusRegister(attribute: "x\(address)", table: table, address: address, type: type, byteOrder: byte, wordOrder: word,
                       scale: scale, offset: offset, unit: "C62")
    }

    @Test func everyTypeAndOrder() {
        #expect(Self.register(.uint16, scale: 0.01).decode([5350]) == 53.5)
        #expect(Self.register(.int16, scale: 0.1).decode([0xFF83]) == -12.5)
        #expect(Self.register(.int16).decode([0x8000]) == -32768)
        #expect(Self.register(.uint32).decode([0x0001, 0x1170]) == 70_000)
        #expect(Self.register(.int32).decode([0xFFFF, 0xFFFE]) == -2)
        // 1234.5 as IEEE 754 single is 0x449A5000.
        #expect(Self.register(.float32).decode([0x449A, 0x5000]) == 1234.5)
        #expect(Self.register(.float32, word: .little).decode([0x5000, 0x449A]) == 1234.5)
        #expect(Self.register(.float32, byte: .little).decode([0x9A44, 0x0050]) == 1234.5)
        #expect(Self.register(.float32, byte: .little, word: .little).decode([0x0050, 0x9A44]) == 1234.5)
        // 23.25 as IEEE 754 double is 0x4037400000000000.
        #expect(Self.register(.float64).decode([0x4037, 0x4000, 0, 0]) == 23.25)
        #expect(Self.register(.float64, word: .little).decode([0, 0, 0x4000, 0x4037]) == 23.25)
        #expect(Self.register(.uint16, scale: 0.5, offset: -40).decode([100]) == 10)
        #expect(Self.register(.bool, table: .coil).decode([1]) == 1)
    }

    @Test func readsAreGroupedWithinTheProtocolsLimits() {
        let registers = [
            Self.register(.uint16, address: 0), Self.register(.float32, address: 2), Self.register(.uint32, address: 10),
            Self.register(.uint16, address: 40), Self.register(.float64, address: 122), Self.register(.uint16, address: 7, table: .input),
            Self.register(.bool, address: 0, table: .coil), Self.register(.bool, address: 5, table: .coil),
        ]
        let plan = ModbusReadPlan(registers)
        #expect(plan.requests.map { "\($0.table.rawValue) \($0.address)+\($0.count)" }
                == ["holding 0+12", "holding 40+1", "holding 122+4", "input 7+1", "coil 0+6"])
        #expect(plan.requests[0].registers == [0, 1, 2])
        // Nothing over 125 registers, however dense.
        let dense = (0..<300).map { Self.register(.uint16, address: $0) }
        #expect(ModbusReadPlan(dense).requests.map(\.count) == [125, 125, 50])
    }

    @Test func configurationErrorsNameTheKey() {
        #expect { _ = try InputFixtures.input("- type: modbus\n  sensor: m\n  device: serial0\n  registers:\n    - attribute: v\n      address: 0") } throws: {
            "\($0)".contains("device")
        }
        #expect { _ = try InputFixtures.input("- type: modbus\n  sensor: m\n  device: tcp://h\n  registers:\n    - attribute: v\n      table: coil\n      address: 0\n      type: float32") } throws: {
            "\($0)".contains("bits")
        }
        #expect { _ = try InputFixtures.input("- type: modbus\n  sensor: m\n  device: tcp://h\n  registers:\n    - attribute: v\n      address: 65535\n      type: uint32") } throws: {
            "\($0)".contains("past the last register")
        }
        #expect { _ = try InputFixtures.input("- type: modbus\n  sensor: m\n  device: tcp://h:502\n  registers:\n    - attribute: v\n      address: 1\n      wordorder: big") } throws: {
            "\($0)".contains("wordorder")
        }
    }
}
