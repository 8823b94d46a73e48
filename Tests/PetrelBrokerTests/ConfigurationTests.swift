import Foundation
import PetrelBroker
import PetrelStorage
import Testing

@Suite("Broker settings")
struct ConfigurationTests {
    @Test("defaults resolve to the library's defaults, with the metrics endpoint on and optional")
    func defaults() throws {
        let resolved = try BrokerSettings.resolve(flags: [:], environment: [:])
        var expected = BrokerConfiguration()
        expected.metricsEndpoint = MetricsEndpointConfiguration(host: "127.0.0.1", port: 9464, required: false)
        #expect(resolved.broker.dataDirectory == expected.dataDirectory)
        #expect(resolved.broker.host == expected.host && resolved.broker.port == expected.port)
        #expect(resolved.broker.advertisedHost == nil && resolved.broker.advertisedPort == nil)
        #expect(resolved.broker.log == expected.log)
        #expect(resolved.broker.groups.initialRebalanceDelayMs == expected.groups.initialRebalanceDelayMs)
        #expect(resolved.broker.groups.minSessionTimeoutMs == expected.groups.minSessionTimeoutMs)
        #expect(resolved.broker.groups.maxSessionTimeoutMs == expected.groups.maxSessionTimeoutMs)
        #expect(resolved.broker.retentionCheckIntervalMs == expected.retentionCheckIntervalMs)
        #expect(resolved.broker.maxRequestBytes == expected.maxRequestBytes)
        #expect(resolved.broker.metricsEndpoint == expected.metricsEndpoint)
        #expect(resolved.broker.shutdownTimeoutMs == expected.shutdownTimeoutMs)
        #expect(resolved.logLevel == .info && resolved.logFormat == .text)
    }

    @Test("a flag beats the environment, which beats the file, which beats the default")
    func precedence() throws {
        let file = try ConfigFile(
            path: "petrel.conf",
            text: """
                # comment
                segment-bytes = 65536
                flush: always
                retention-ms = 1000
                metrics = off
                """
        )
        let resolved = try BrokerSettings.resolve(
            flags: ["segment-bytes": "131072"],
            environment: ["PETREL_FLUSH": "interval", "PETREL_BIN": "/ignored", "HOME": "/root"],
            file: file
        )
        #expect(resolved.broker.log.segmentBytes == 131_072)
        #expect(resolved.broker.log.flushPolicy == .interval)
        #expect(resolved.broker.log.retentionMs == 1000)
        #expect(resolved.broker.metricsEndpoint == nil)
        let sources = BrokerSettings.sources(
            flags: ["segment-bytes": "131072"],
            environment: ["PETREL_FLUSH": "interval"],
            file: file
        )
        let from = Dictionary(uniqueKeysWithValues: sources.map { ($0.setting.name, $0.source) })
        #expect(from["segment-bytes"] == "--segment-bytes")
        #expect(from["flush"] == "PETREL_FLUSH")
        #expect(from["retention-ms"] == "petrel.conf line 4")
        #expect(from["data"] == "default")
    }

    @Test("an address the operator chose for metrics is required")
    func chosenMetricsAddressIsRequired() throws {
        let resolved = try BrokerSettings.resolve(flags: [:], environment: ["PETREL_METRICS": "0.0.0.0:9999"])
        #expect(
            resolved.broker.metricsEndpoint == MetricsEndpointConfiguration(host: "0.0.0.0", port: 9999, required: true)
        )
        let listen = try BrokerSettings.resolve(
            flags: ["listen": "[::1]:19092", "advertise": "broker.example:9092"],
            environment: [:]
        )
        #expect(listen.broker.host == "::1" && listen.broker.port == 19092)
        #expect(listen.broker.advertisedHost == "broker.example" && listen.broker.advertisedPort == 9092)
    }

    @Test("bad values and unknown file keys are one clear sentence naming the setting and its source")
    func errors() throws {
        func message(_ body: () throws -> Void) -> String {
            do {
                try body()
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        #expect(
            message { _ = try BrokerSettings.resolve(flags: ["segment-bytes": "12"], environment: [:]) }
                == "--segment-bytes: segment-bytes must be a whole number from 14 to 2147483647, got '12'."
        )
        #expect(
            message { _ = try BrokerSettings.resolve(flags: [:], environment: ["PETREL_FLUSH": "sometimes"]) }
                == "PETREL_FLUSH: flush must be always, interval or never, got 'sometimes'."
        )
        #expect(
            message {
                _ = try BrokerSettings.resolve(
                    flags: [:],
                    environment: [:],
                    file: try ConfigFile(path: "p.conf", text: "\nsegmnt-bytes = 1\n")
                )
            }
                == "p.conf line 2: segmnt-bytes is not a setting (see docs/configuration.md), got '1'."
        )
        #expect(
            message { _ = try ConfigFile(path: "p.conf", text: "listen\n") } == "p.conf line 1: expected NAME = VALUE."
        )
        #expect(
            message { _ = try BrokerSettings.resolve(flags: ["listen": "nowhere"], environment: [:]) }.contains(
                "must be HOST:PORT"
            )
        )
        #expect(
            message {
                _ = try BrokerSettings.resolve(
                    flags: ["group-min-session-timeout-ms": "9000", "group-max-session-timeout-ms": "8000"],
                    environment: [:]
                )
            }.contains("must be at most group-max-session-timeout-ms")
        )
        #expect(
            message {
                _ = try BrokerSettings.resolve(
                    flags: [
                        "group-consumer-session-timeout-ms": "3000", "group-consumer-heartbeat-interval-ms": "3000",
                    ],
                    environment: [:]
                )
            }.contains("must be below group-consumer-session-timeout-ms")
        )
        #expect(
            message {
                _ = try BrokerSettings.resolve(flags: ["group-consumer-assignors": "range,sticky"], environment: [:])
            }.contains("must be uniform, range or both")
        )
        let chosen = try? BrokerSettings.resolve(
            flags: ["group-consumer-assignors": "range, uniform"],
            environment: [:]
        )
        #expect(chosen?.broker.groups.consumerAssignorNames == ["range", "uniform"])
    }

    @Test("docs/configuration.md lists every setting with its variable, default and meaning")
    func documentedTable() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../docs/configuration.md"
        )
        let text = try String(contentsOf: docs, encoding: .utf8)
        let start = try #require(text.range(of: "<!-- settings-table"))
        let end = try #require(text.range(of: "<!-- /settings-table -->"))
        let rows = text[start.upperBound..<end.lowerBound].split(separator: "\n").filter { $0.hasPrefix("| `") }
        let documented = rows.map { row in
            row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let expected = BrokerSettings.all.map { setting in
            [
                "`\(setting.name)`", "`\(setting.environmentVariable)`",
                setting.defaultValue.isEmpty ? "(none)" : "`\(setting.defaultValue)`", setting.summary,
            ]
        }
        #expect(documented == expected)
    }
}
