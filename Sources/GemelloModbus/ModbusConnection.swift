import CModbus

/// The one error type of the Modbus wrapper: what failed, in libmodbus's words.
public struct ModbusError: Error, CustomStringConvertible, Sendable {
    public let message: String
    /// The errno-style code (libmodbus's own codes are above `MODBUS_ENOBASE`), or 0.
    public let code: Int32
    /// The device answered with a Modbus exception (an illegal address, say): it is there.
    public var isException: Bool { gemello_modbus_is_exception(code) != 0 }

    init(_ what: String) {
        code = gemello_modbus_errno()
        message = "\(what): \(String(cString: modbus_strerror(code)))"
    }

    init(message: String) {
        code = 0
        self.message = message
    }

    public var description: String { message }
}

/// A Modbus master's connection through libmodbus: TCP, or RTU over a serial line. Blocking
/// calls, one at a time (callers run it on a thread of their own). Thin: every libmodbus error is
/// converted here, in one place.
public final class ModbusConnection: @unchecked Sendable {
    // @unchecked: libmodbus contexts are not thread-safe; the owner uses one from one thread at a time.
    private let context: OpaquePointer
    public let endpoint: String
    private var connected = false

    /// A Modbus TCP device (port 502 by convention).
    public static func tcp(host: String, port: Int) throws(ModbusError) -> ModbusConnection {
        guard let context = modbus_new_tcp_pi(host, String(port)) else { throw ModbusError("tcp \(host):\(port)") }
        return ModbusConnection(context: context, endpoint: "tcp://\(host):\(port)")
    }

    /// A Modbus RTU device on a serial line (RS-485 through a USB adapter, usually).
    public static func rtu(device: String, baud: Int, parity: Character, dataBits: Int, stopBits: Int) throws(ModbusError) -> ModbusConnection {
        guard let ascii = parity.asciiValue,
              let context = modbus_new_rtu(device, Int32(baud), CChar(bitPattern: ascii), Int32(dataBits), Int32(stopBits)) else {
            throw ModbusError("rtu \(device)")
        }
        return ModbusConnection(context: context, endpoint: "rtu://\(device)")
    }

    private init(context: OpaquePointer, endpoint: String) {
        self.context = context
        self.endpoint = endpoint
    }

    deinit {
        if connected { modbus_close(context) }
        modbus_free(context)
    }

    /// The unit (slave) id requests go to, and how long to wait for each answer.
    public func configure(unitID: Int, timeout: Duration) throws(ModbusError) {
        guard modbus_set_slave(context, Int32(unitID)) == 0 else { throw ModbusError("unit id \(unitID)") }
        let (seconds, attoseconds) = timeout.components
        guard modbus_set_response_timeout(context, UInt32(seconds), UInt32(attoseconds / 1_000_000_000_000)) == 0 else {
            throw ModbusError("response timeout")
        }
    }

    public func connect() throws(ModbusError) {
        guard !connected else { return }
        guard modbus_connect(context) == 0 else { throw ModbusError("connect to \(endpoint)") }
        connected = true
    }

    public func close() {
        if connected { modbus_close(context) }
        connected = false
    }

    public var isConnected: Bool { connected }

    /// Holding registers (function 3), up to 125 at a time.
    public func readHoldingRegisters(address: Int, count: Int) throws(ModbusError) -> [UInt16] {
        try registers(address, count) { modbus_read_registers(context, $0, $1, $2) }
    }

    /// Input registers (function 4), up to 125 at a time.
    public func readInputRegisters(address: Int, count: Int) throws(ModbusError) -> [UInt16] {
        try registers(address, count) { modbus_read_input_registers(context, $0, $1, $2) }
    }

    /// Coils (function 1), up to 2000 at a time.
    public func readCoils(address: Int, count: Int) throws(ModbusError) -> [Bool] {
        try bits(address, count) { modbus_read_bits(context, $0, $1, $2) }
    }

    /// Discrete inputs (function 2), up to 2000 at a time.
    public func readDiscreteInputs(address: Int, count: Int) throws(ModbusError) -> [Bool] {
        try bits(address, count) { modbus_read_input_bits(context, $0, $1, $2) }
    }

    private func registers(_ address: Int, _ count: Int,
                           _ call: (Int32, Int32, UnsafeMutablePointer<UInt16>) -> Int32) throws(ModbusError) -> [UInt16] {
        var values = [UInt16](repeating: 0, count: count)
        let read = values.withUnsafeMutableBufferPointer { call(Int32(address), Int32(count), $0.baseAddress!) }
        guard read == Int32(count) else { throw failure("read \(count) registers at \(address)") }
        return values
    }

    private func bits(_ address: Int, _ count: Int, _ call: (Int32, Int32, UnsafeMutablePointer<UInt8>) -> Int32) throws(ModbusError) -> [Bool] {
        var values = [UInt8](repeating: 0, count: count)
        let read = values.withUnsafeMutableBufferPointer { call(Int32(address), Int32(count), $0.baseAddress!) }
        guard read == Int32(count) else { throw failure("read \(count) bits at \(address)") }
        return values.map { $0 != 0 }
    }

    /// A failed exchange: the error, and the connection dropped when the link itself failed (a
    /// timeout, a reset), so the next call reconnects; a Modbus exception (an illegal address)
    /// leaves it up.
    private func failure(_ what: String) -> ModbusError {
        let error = ModbusError("\(what) on \(endpoint)")
        if gemello_modbus_is_exception(error.code) == 0 { close() }
        return error
    }
}
