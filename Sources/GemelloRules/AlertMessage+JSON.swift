import GemelloCore

extension AlertMessage {
    /// The message as JSON for webhooks and MQTT: `{"id", "msgType", "sent", "references", "alert": {...}}`
    /// with the headline and description of every language of the rule.
    public func json(rule: AlertRule?) -> String {
        var w = JSONWriter()
        w.field("id", id)
        w.field("msgType", kind.rawValue)
        w.field("sent", Timestamp.iso8601(milliseconds: sent))
        w.field("references", raw: "[" + references.map { JSONWriter.quote($0.id) }.joined(separator: ",") + "]")
        w.field("alert", raw: alert.json(rule: rule))
        return w.finished()
    }
}

extension Alert {
    /// The alert as JSON (the API's `/alerts` and the webhook payload).
    public func json(rule: AlertRule?) -> String {
        var w = JSONWriter()
        w.field("id", id)
        w.field("rule", rule?.name ?? self.rule)
        w.field("subject", subject)
        w.field("entityId", entityID)
        w.field("entityType", entityType)
        if let agent { w.field("agent", agent) }
        if let attribute { w.field("attribute", attribute) }
        if let unit { w.field("unitCode", unit) }
        w.field("status", status.rawValue)
        w.field("severity", severity.rawValue)
        if let category = rule?.category { w.field("category", category.rawValue) }
        w.field("value", value)
        w.field("peak", peak)
        if let site { w.field("site", site) }
        if let geocode { w.field("geocode", geocode) }
        if let areaName { w.field("areaName", areaName) }
        w.field("count", count)
        // Messages sent about it so far: <id>.0 ..< <id>.<messages> (a receiver can check it has them all).
        w.field("messages", revision)
        w.field("raisedAt", Timestamp.iso8601(milliseconds: raisedAt))
        w.field("updatedAt", Timestamp.iso8601(milliseconds: updatedAt))
        if let clearedAt { w.field("clearedAt", Timestamp.iso8601(milliseconds: clearedAt)) }
        w.field("late", late)
        if let acknowledgedAt { w.field("acknowledgedAt", Timestamp.iso8601(milliseconds: acknowledgedAt)) }
        if let acknowledgedBy { w.field("acknowledgedBy", acknowledgedBy) }
        if let location { w.field("location", raw: "{\"type\":\"Point\",\"coordinates\":[\(location.longitude),\(location.latitude)]}") }
        if !members.isEmpty { w.field("agents", raw: "[" + members.map(JSONWriter.quote).joined(separator: ",") + "]") }
        if let rule {
            var texts = JSONWriter()
            for t in rule.texts {
                var one = JSONWriter()
                one.field("headline", AlertText.render(t.headline, self, language: t.language))
                if let d = t.description { one.field("description", AlertText.render(d, self, language: t.language)) }
                texts.field(t.language, raw: one.finished())
            }
            w.field("texts", raw: texts.finished())
        }
        return w.finished()
    }
}
