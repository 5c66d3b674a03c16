import Foundation
import GemelloCore

/// Renders twin entities as NGSI-LD normalized entities (ETSI GS CIM 009), with Smart Data
/// Models attribute names as the agents configured them.
public enum NGSILD {
    /// Core context plus the Smart Data Models context that defines the entity types' terms.
    public static let context: [String] = [
        "https://raw.githubusercontent.com/smart-data-models/data-models/master/context.jsonld",
        "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.3.jsonld",
    ]

    /// The entity as a JSON object (`@context` included when `withContext`, as for `application/ld+json`).
    public static func object(_ entity: TwinEntity, withContext: Bool = true) -> [String: Any] {
        var object: [String: Any] = ["id": entity.id, "type": entity.type]
        if let latitude = entity.latitude, let longitude = entity.longitude {
            object["location"] = ["type": "GeoProperty",
                                  "value": ["type": "Point", "coordinates": [longitude, latitude]]]
        }
        for attribute in entity.attributes {
            object[attribute.name] = ["type": "Property", "value": attribute.value, "unitCode": attribute.unit,
                                      "observedAt": Timestamp.iso8601(milliseconds: attribute.observedAt)]
        }
        if withContext { object["@context"] = context }
        return object
    }

    /// Serialized JSON of one entity or of a list of them.
    public static func json(_ value: Any) -> Data {
        (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    }
}
