/// What the network loop reports. Delivered in order through ``MQTTClient/events``.
public enum MQTTEvent: Sendable {
    /// The broker accepted the connection; `sessionPresent` says it kept our earlier session.
    case connected(sessionPresent: Bool)
    /// The broker refused the connection (bad credentials, protocol...).
    case connectRefused(reason: String)
    /// The connection ended; `expected` is true after our own ``MQTTClient/disconnect()``.
    case disconnected(expected: Bool, reason: String)
    /// The broker confirmed a subscription (SUBACK) made with ``MQTTClient/subscribe(_:)``.
    case subscribed(messageID: Int32)
    /// The broker acknowledged (PUBACK) the QoS 1 message with this id.
    case published(messageID: Int32)
    /// A message arrived on a subscribed topic.
    case message(MQTTMessage)
}

/// An incoming MQTT message, copied out of libmosquitto's buffers.
public struct MQTTMessage: Sendable {
    public let topic: String
    public let payload: [UInt8]
    public let retained: Bool

    public init(topic: String, payload: [UInt8], retained: Bool) {
        self.topic = topic
        self.payload = payload
        self.retained = retained
    }
}
