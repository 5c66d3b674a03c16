import GemelloInputs
import GemelloModbus

/// The `modbus` input's links, through libmodbus (`GemelloModbus`): what the agent lends its
/// inputs in their ``GemelloInputs/InputContext``.
public struct LibModbusConnector: ModbusConnector {
    public init() {}

    public func connect(_ endpoint: ModbusEndpoint, unitID: Int, timeout: Duration) throws -> any ModbusLink {
        let connection: ModbusConnection
        switch endpoint {
        case .tcp(let host, let port): connection = try ModbusConnection.tcp(host: host, port: port)
        case .rtu(let device, let baud, let parity, let dataBits, let stopBits):
            connection = try ModbusConnection.rtu(device: device, baud: baud, parity: parity, dataBits: dataBits, stopBits: stopBits)
        }
        try connection.configure(unitID: unitID, timeout: timeout)
        try connection.connect()
        return Link(connection: connection)
    }

    final class Link: ModbusLink {
        let connection: ModbusConnection
        init(connection: ModbusConnection) { self.connection = connection }

        func read(_ table: ModbusTable, address: Int, count: Int) throws -> [UInt16] {
            switch table {
            case .holding: return try connection.readHoldingRegisters(address: address, count: count)
            case .input: return try connection.readInputRegisters(address: address, count: count)
            case .coil: return try connection.readCoils(address: address, count: count).map { $0 ? 1 : 0 }
            case .discrete: return try connection.readDiscreteInputs(address: address, count: count).map { $0 ? 1 : 0 }
            }
        }

        func close() { connection.close() }
    }
}
