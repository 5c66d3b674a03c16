/// The MQTT 3.1.1 subscriber side (OASIS standard, 2014) as a pure state machine: bytes in,
/// events and bytes to send out; no sockets, no clock of its own (tested without I/O).
///
/// Why not libmosquitto here: its 2.0 client acknowledges an incoming QoS 1 message (PUBACK) as
/// soon as it has read it, before the application could store it; `mqtt-subscribe` must
/// acknowledge only after the agent's buffer committed the readings, so that a crash loses
/// nothing (the broker redelivers what was not acknowledged to the persistent session).
struct MQTTSubscriberSession: Sendable {
    enum Event: Equatable, Sendable {
        case connected(sessionPresent: Bool)
        /// The broker refused the connection (CONNACK return code, MQTT 3.1.1 §3.2.2.3).
        case refused(code: UInt8)
        case subscribed(packetID: UInt16, grantedQoS: [UInt8])
        /// A message; `packetID` set for QoS 1 (to acknowledge with ``puback(_:)`` once stored).
        case message(topic: String, payload: [UInt8], packetID: UInt16?, retained: Bool)
        case pong
    }

    struct ProtocolError: Error, Equatable, CustomStringConvertible {
        var reason: String
        var description: String { "MQTT protocol error: \(reason)" }
    }

    static let maxPacket = 16 << 20
    private var buffer: [UInt8] = []
    private var nextPacketID: UInt16 = 0

    /// CONNECT: protocol level 4, `cleanSession` false for a persistent session (the broker keeps
    /// the subscription and the unacknowledged QoS 1 messages while we are away).
    static func connect(clientID: String, cleanSession: Bool, keepAliveSeconds: UInt16,
                        username: String? = nil, password: String? = nil) -> [UInt8] {
        var body: [UInt8] = string("MQTT") + [4]
        var flags: UInt8 = cleanSession ? 0x02 : 0
        if username != nil { flags |= 0x80 }
        if password != nil { flags |= 0x40 }
        body += [flags, UInt8(keepAliveSeconds >> 8), UInt8(keepAliveSeconds & 0xFF)]
        body += string(clientID)
        if let username { body += string(username) }
        if let password { body += string(password) }
        return packet(0x10, body)
    }

    /// SUBSCRIBE to `filters` at QoS 1.
    mutating func subscribe(_ filters: [String]) -> (packetID: UInt16, bytes: [UInt8]) {
        let id = newPacketID()
        var body: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF)]
        for filter in filters { body += Self.string(filter) + [1] }
        return (id, Self.packet(0x82, body))
    }

    static func puback(_ id: UInt16) -> [UInt8] { [0x40, 2, UInt8(id >> 8), UInt8(id & 0xFF)] }
    static let pingreq: [UInt8] = [0xC0, 0]
    static let disconnect: [UInt8] = [0xE0, 0]

    /// Takes bytes from the broker; returns the events of every complete packet.
    mutating func received(_ bytes: some Collection<UInt8>) throws(ProtocolError) -> [Event] {
        buffer.append(contentsOf: bytes)
        var events: [Event] = []
        var start = 0
        while true {
            guard buffer.count - start >= 2 else { break }
            var length = 0, multiplier = 1, index = start + 1
            var complete = false
            while index < buffer.count {
                let byte = buffer[index]
                length += Int(byte & 0x7F) * multiplier
                index += 1
                if byte & 0x80 == 0 { complete = true; break }
                multiplier *= 128
                guard multiplier <= 128 * 128 * 128 else { throw ProtocolError(reason: "remaining length over 4 bytes") }
            }
            guard complete else { break }
            guard length <= Self.maxPacket else { throw ProtocolError(reason: "a packet of \(length) bytes") }
            guard buffer.count - index >= length else { break }
            let header = buffer[start]
            events.append(try Self.decode(header, buffer[index..<(index + length)]))
            start = index + length
        }
        buffer.removeFirst(start)
        return events
    }

    private static func decode(_ header: UInt8, _ body: ArraySlice<UInt8>) throws(ProtocolError) -> Event {
        let b = Array(body)
        switch header >> 4 {
        case 2:  // CONNACK
            guard b.count == 2 else { throw ProtocolError(reason: "CONNACK of \(b.count) bytes") }
            return b[1] == 0 ? .connected(sessionPresent: b[0] & 1 == 1) : .refused(code: b[1])
        case 9:  // SUBACK
            guard b.count >= 3 else { throw ProtocolError(reason: "short SUBACK") }
            return .subscribed(packetID: UInt16(b[0]) << 8 | UInt16(b[1]), grantedQoS: Array(b[2...]))
        case 3:  // PUBLISH
            let qos = (header >> 1) & 3
            guard qos <= 1 else { throw ProtocolError(reason: "a QoS \(qos) message on a QoS 1 subscription") }
            guard b.count >= 2 else { throw ProtocolError(reason: "short PUBLISH") }
            let topicLength = Int(b[0]) << 8 | Int(b[1])
            var offset = 2 + topicLength
            guard b.count >= offset + (qos == 1 ? 2 : 0) else { throw ProtocolError(reason: "PUBLISH shorter than its topic") }
            let topic = String(decoding: b[2..<(2 + topicLength)], as: UTF8.self)
            var id: UInt16?
            if qos == 1 {
                id = UInt16(b[offset]) << 8 | UInt16(b[offset + 1])
                offset += 2
            }
            return .message(topic: topic, payload: Array(b[offset...]), packetID: id, retained: header & 1 == 1)
        case 13:  // PINGRESP
            return .pong
        default:
            throw ProtocolError(reason: "unexpected packet type \(header >> 4)")
        }
    }

    private mutating func newPacketID() -> UInt16 {
        nextPacketID = nextPacketID == .max ? 1 : nextPacketID + 1
        return nextPacketID
    }

    static func string(_ text: String) -> [UInt8] {
        let bytes = Array(text.utf8)
        return [UInt8(bytes.count >> 8), UInt8(bytes.count & 0xFF)] + bytes
    }

    static func packet(_ header: UInt8, _ body: [UInt8]) -> [UInt8] {
        var out = [header]
        var length = body.count
        repeat {
            var byte = UInt8(length % 128)
            length /= 128
            if length > 0 { byte |= 0x80 }
            out.append(byte)
        } while length > 0
        return out + body
    }

    /// Whether `topic` matches the filter `filter` (`+` one level, `#` the rest; §4.7).
    static func matches(_ filter: String, _ topic: String) -> Bool {
        let f = filter.split(separator: "/", omittingEmptySubsequences: false)
        let t = topic.split(separator: "/", omittingEmptySubsequences: false)
        for (i, level) in f.enumerated() {
            if level == "#" { return !(i == 0 && topic.hasPrefix("$")) }
            guard i < t.count else { return false }
            if level == "+" { if i == 0 && topic.hasPrefix("$") { return false }; continue }
            if level != t[i] { return false }
        }
        return f.count == t.count
    }
}
