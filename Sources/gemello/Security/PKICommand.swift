import ArgumentParser
import Foundation
import GemelloCore

/// Where the PKI folder is: `--pki`, `$GEMELLO_PKI`, or /etc/gemello/pki.
struct PKIOptions: ParsableArguments {
    @Option(name: .long, help: "The PKI folder (default: $GEMELLO_PKI or /etc/gemello/pki).")
    var pki: String?

    var folder: URL {
        URL(fileURLWithPath: pki ?? Environment.value("GEMELLO_PKI") ?? "/etc/gemello/pki").standardizedFileURL
    }
}

/// Runs a security command's body: errors are printed with their fix and exit 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let error as CLIError {
        Console.error("gemello: \(error)")
        throw ExitCode(1)
    } catch let error as ExitCode {
        throw error
    } catch {
        Console.error("gemello: \(error.localizedDescription)")
        throw ExitCode(1)
    }
}

struct PKICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pki",
        abstract: "The local certificate authority for the broker, the aggregator and every agent.",
        subcommands: [PKIInitCommand.self])
}

struct PKIInitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create the CA, the broker's and the aggregator's certificates, and the broker's access files.",
        discussion: """
            Writes the folder described in docs/security.md. Then include its mosquitto.conf in the \
            broker's configuration, point the aggregator at the printed keys, and enrol each agent \
            with 'gemello agent enroll <id>'.
            """)

    @OptionGroup var location: PKIOptions

    @Option(name: .customLong("broker-host"), help: "A name or address agents use to reach the broker (repeat for several; localhost and 127.0.0.1 are always added).")
    var brokerHosts: [String] = []

    @Option(name: .long, help: "The broker's TLS port for certificate identities.")
    var port = 8883

    @Option(name: .long, help: "Also a TLS port for agents enrolled with --password (username and password).")
    var passwordPort: Int?

    @Option(name: .long, help: "The command that makes the broker re-read its access files (SIGHUP).")
    var reloadCommand = "systemctl reload mosquitto"

    @Option(name: .long, help: "Validity of the certificates issued, in days.")
    var days = 825

    func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port must be 1-65535 (got \(port))") }
        if let passwordPort, !(1...65535).contains(passwordPort) || passwordPort == port {
            throw ValidationError("--password-port must be 1-65535 and differ from --port (got \(passwordPort))")
        }
        guard (1...3650).contains(days) else { throw ValidationError("--days must be 1-3650 (got \(days))") }
        for host in brokerHosts where host.isEmpty || host.contains(where: { $0 == "/" || $0 == "," || $0.isWhitespace }) {
            throw ValidationError("--broker-host '\(host)' is not a host name or address")
        }
    }

    func run() throws {
        try reportingErrors {
            let pki = PKI(folder: location.folder)
            let hosts = brokerHosts.isEmpty ? ["localhost"] : brokerHosts
            try pki.initialize(.init(brokerHosts: hosts, tlsPort: port, passwordPort: passwordPort, reloadCommand: reloadCommand,
                                     caName: "Gemello CA \(hosts[0])", days: days))
            print("""
                PKI ready in \(pki.folder.path) (keep ca.key and agents.txt private; back the folder up).

                1. Broker: include \(pki.path("mosquitto.conf")) in mosquitto's configuration and restart it.
                   Its reload command (for enroll and revoke): \(reloadCommand)
                2. Aggregator: add to aggregator.yaml
                     broker: mqtts://\(hosts[0]):\(port)
                     broker-tls:
                       ca-file: \(pki.path("ca.crt"))
                       cert-file: \(pki.path("aggregator.crt"))
                       key-file: \(pki.path("aggregator.key"))
                     security:
                       enrolment: \(pki.path("agents.txt"))
                3. Agents: gemello agent enroll <agent-id> --pki \(pki.folder.path)
                """)
        }
    }
}
