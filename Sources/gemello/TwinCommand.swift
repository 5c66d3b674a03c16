import ArgumentParser
import Foundation
import GemelloCore

struct TwinCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "twin", abstract: "Query the digital twin (NGSI-LD entities).",
        subcommands: [EntitiesCommand.self, EntityCommand.self, HistoryCommand.self, LineageCommand.self])
}

struct EntitiesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "entities", abstract: "List entities with their latest observation.")

    @OptionGroup var options: AggregatorOptions
    @Option(name: .long, help: "Only entities of this type (e.g. AirQualityObserved).")
    var type: String?

    func run() async throws {
        let selector = type.map { "type=\(APIClient.escape($0))" } ?? "idPattern=.*"
        let entities = try await NGSIEntityView.all(options.client, selector: selector, json: options.json)
        if options.json { return }
        guard !entities.isEmpty else { print("the twin has no entities yet"); return }
        var table = Table(["ENTITY", "TYPE", "ATTRIBUTES", "LATEST OBSERVATION"])
        for entity in entities {
            table.add([entity.id, entity.type, "\(entity.attributes.count)", entity.attributes.map(\.observedAt).max() ?? "-"])
        }
        print(table.render(), terminator: "")
        print("\(entities.count) entities")
    }
}

struct EntityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "entity", abstract: "Show one entity's latest values with units and observation times.")

    @OptionGroup var options: AggregatorOptions
    @Argument(help: "The entity id (urn:ngsi-ld:...), or its unique end such as 'replay-milano-arpa:arpa-senato'.")
    var id: String

    func run() async throws {
        let fullID = try await NGSIEntityView.resolve(id, options.client)
        let data = try await options.client.getData("/ngsi-ld/v1/entities/\(APIClient.escape(fullID))")
        if options.json { print(String(decoding: data, as: UTF8.self)); return }
        let entity = try NGSIEntityView(data)
        print("\(entity.id)  (\(entity.type))")
        if let location = entity.location { print("location  \(location)") }
        var table = Table(["ATTRIBUTE", "VALUE", "UNIT", "OBSERVED AT"])
        for attribute in entity.attributes {
            table.add([attribute.name, attribute.value, "\(UnitCode.symbol(attribute.unit)) (\(attribute.unit))", attribute.observedAt])
        }
        print(table.render(), terminator: "")
    }
}

/// Just enough of an NGSI-LD normalized entity to print it.
struct NGSIEntityView {
    struct Attribute { var name, value, unit, observedAt: String }
    var id: String
    var type: String
    var location: String?
    var attributes: [Attribute]

    init(_ data: Data) throws {
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw CLIError("the aggregator returned something that is not an entity. Is it a Gemello aggregator of the same version?")
        }
        try self.init(object: object)
    }

    init(object: [String: Any]) throws {
        guard let id = object["id"] as? String, let type = object["type"] as? String else {
            throw CLIError("the aggregator returned an entity without id or type. Is it a Gemello aggregator of the same version?")
        }
        self.id = id
        self.type = type
        if let location = object["location"] as? [String: Any], let value = location["value"] as? [String: Any],
           let coordinates = value["coordinates"] as? [Double], coordinates.count == 2 {
            self.location = "lat \(coordinates[1]), lon \(coordinates[0])"
        }
        attributes = object.compactMap { key, value -> Attribute? in
            guard let property = value as? [String: Any], property["type"] as? String == "Property" else { return nil }
            let rendered = (property["value"] as? NSNumber).map { "\($0)" } ?? "\(property["value"] ?? "")"
            return Attribute(name: key, value: rendered, unit: property["unitCode"] as? String ?? "",
                             observedAt: property["observedAt"] as? String ?? "-")
        }.sorted { $0.name < $1.name }
    }

    /// A full entity id for `id`, which may be the unique end of one (`replay-milano-arpa:arpa-senato`).
    static func resolve(_ id: String, _ client: APIClient) async throws -> String {
        if id.hasPrefix("urn:") { return id }
        let all = try await all(client, selector: "idPattern=" + APIClient.escape(id), json: false)
        let matches = all.filter { $0.id.hasSuffix(":" + id) || $0.id == id }
        guard matches.count == 1 else {
            let known = all.map(\.id).joined(separator: "\n  ")
            if matches.isEmpty {
                throw CLIError.notFound(all.isEmpty
                    ? "no entity id ends with '\(id)'; the twin has no entities yet. Fix: start an agent (README, 'A tour')"
                    : "no entity id ends with '\(id)'. Fix: use one of the known entities (gemello twin list):\n  \(known)")
            }
            throw CLIError.usage("'\(id)' matches \(matches.count) entities. Fix: give the full id, one of:\n  \(matches.map(\.id).joined(separator: "\n  "))")
        }
        return matches[0].id
    }

    /// Every entity the selector matches, page by page (the broker caps a page at 1000).
    static func all(_ client: APIClient, selector: String, json: Bool) async throws -> [NGSIEntityView] {
        var out: [NGSIEntityView] = []
        var offset = 0
        while true {
            let data = try await client.getData("/ngsi-ld/v1/entities?\(selector)&limit=1000&offset=\(offset)")
            if json { print(String(decoding: data, as: UTF8.self)) }
            let page = try list(data)
            out += page
            if page.count < 1000 { return out }
            offset += page.count
        }
    }

    static func list(_ data: Data) throws -> [NGSIEntityView] {
        guard let array = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            throw CLIError("the aggregator returned something that is not a list of entities. Is it a Gemello aggregator of the same version?")
        }
        return try array.map { try NGSIEntityView(object: $0) }
    }
}
