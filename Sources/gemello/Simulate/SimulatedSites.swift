import Foundation
import GemelloAgent
import GemelloCore

/// Where virtual agents stand: 41 5G tower sites on a ring around central Milan (the program's
/// count) and fibre nodes spread inside it; several agents share a site as real ones do.
enum SimulatedSites {
    static let towers = 41
    static let fibreNodes = 80
    static let center = (latitude: 45.4642, longitude: 9.1900)

    /// Agent `index` (1-based): every third agent at a tower, the others at fibre nodes.
    static func site(_ index: Int) -> Site {
        if index % 3 == 1 {
            let tower = (index / 3) % towers
            let angle = Double(tower) / Double(towers) * 2 * Double.pi
            let radius = 0.045 + 0.02 * Double(tower % 3)  // ≈ 5-9 km
            return Site(id: "sim-tower-\(tower + 1)", kind: .fiveGTower,
                        latitude: center.latitude + radius * sin(angle) * 0.7, longitude: center.longitude + radius * cos(angle))
        }
        let node = index % fibreNodes
        // A golden-angle spiral fills the disc evenly without randomness.
        let angle = Double(node) * 2.399963
        let radius = 0.06 * (Double(node) / Double(fibreNodes)).squareRoot()
        return Site(id: "sim-fibre-\(node + 1)", kind: .fiberNode,
                    latitude: center.latitude + radius * sin(angle) * 0.7, longitude: center.longitude + radius * cos(angle))
    }

    /// Sensors by site kind: towers carry weather, air quality and link health; fibre nodes
    /// (in the sewer ducts) sewer level, traffic and power.
    static func profile(_ index: Int) -> SimulatedInput.Profile {
        let tower: [SimulatedInput.Profile] = [.weather, .airQuality, .link]
        let fibre: [SimulatedInput.Profile] = [.sewer, .traffic, .power]
        return index % 3 == 1 ? tower[(index / 3) % 3] : fibre[index % 3]
    }
}
