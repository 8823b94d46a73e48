import Foundation
import NIOCore
import NIOSSL
import PetrelBroker
import PetrelClient
import PetrelProtocol
import PetrelSASL
import PetrelTestSupport
import Testing

/// The client on secured listeners: TLS, SASL (SCRAM-SHA-256 and PLAIN), both; the right password
/// gets in, a wrong one gets a clear error.
@Suite("Client security")
struct SecurityTests {
    /// A self-signed certificate for 127.0.0.1 and a users file with one user, in a fresh folder.
    struct Material {
        let folder: String
        var certificate: String { "\(folder)/cert.pem" }
        var key: String { "\(folder)/key.pem" }
        var users: String { "\(folder)/users.json" }

        init() throws {
            folder =
                FileManager.default.temporaryDirectory.appendingPathComponent("petrel-client-tls-\(UUID().uuidString)")
                .path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let status = try runChildProcess([
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(folder)/key.pem", "-out",
                "\(folder)/cert.pem", "-days", "2", "-subj", "/CN=localhost", "-addext",
                "subjectAltName=IP:127.0.0.1,DNS:localhost",
            ])
            guard status == 0 else {
                throw KafkaClientError.invalidArgument("openssl could not make a test certificate")
            }
            var file = UserStore.UsersFile()
            file.users["alice"] = ScramCredential(password: "s3cret", iterations: 4096)
            try UserStore.save(file, to: "\(folder)/users.json")
        }

        func remove() { try? FileManager.default.removeItem(atPath: folder) }

        func configure(_ securityProtocol: ListenerSecurity.SecurityProtocol) -> (inout BrokerConfiguration) -> Void {
            { configuration in
                configuration.security.securityProtocol = securityProtocol
                configuration.security.tlsCertificatePath = certificate
                configuration.security.tlsPrivateKeyPath = key
                configuration.security.usersFile = users
            }
        }

        func clientSecurity(
            tls: Bool,
            _ mechanism: SaslMechanism?,
            password: String = "s3cret"
        ) throws -> KafkaClientSecurity {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.trustRoots = .file(certificate)
            return try KafkaClientSecurity(
                tls: tls ? configuration : nil,
                sasl: mechanism.map { .init(mechanism: $0, user: "alice", password: password) }
            )
        }
    }

    static let cases: [(ListenerSecurity.SecurityProtocol, SaslMechanism?)] = [
        (.saslSSL, .scramSHA256), (.saslSSL, .plain), (.saslPlaintext, .scramSHA256), (.saslPlaintext, .plain),
        (.ssl, nil),
    ]

    @Test("produce, consume in a group and administer over each secured listener", arguments: cases.indices)
    func roundTrip(index: Int) async throws {
        let (listener, mechanism) = Self.cases[index]
        let material = try Material()
        defer { material.remove() }
        let security = try material.clientSecurity(tls: listener.usesTLS, mechanism)
        #expect(security.securityProtocol == listener)
        try await TestCluster.withInProcessBroker(configure: material.configure(listener)) { bootstrap in
            let topic = TestCluster.uniqueTopic("secure")
            let admin = KafkaAdmin(bootstrap: [bootstrap], security: security)
            try await admin.createTopic(topic, partitions: 2, replicationFactor: 1)
            var producerConfiguration = TestCluster.producerConfiguration(bootstrap)
            producerConfiguration.security = security
            try await KafkaProducer.withProducer(producerConfiguration) { producer in
                for index in 0..<50 {
                    _ = try await producer.send(
                        ProducerRecord(topic: topic, value: ByteBuffer(string: "secret \(index)"))
                    )
                }
            }
            var consumerConfiguration = TestCluster.consumerConfiguration(
                bootstrap,
                .group(id: "secure-readers", topics: [topic])
            )
            consumerConfiguration.security = security
            let records = try await KafkaConsumer.withConsumer(consumerConfiguration) { try await read(50, from: $0) }
            #expect(Set(records.compactMap(\.valueString)) == Set((0..<50).map { "secret \($0)" }))
            #expect(try await admin.listTopics().map(\.name).contains(topic))
            await admin.close()
        }
    }

    @Test("a wrong password, or no login on a SASL listener, fails with a clear error")
    func refused() async throws {
        let material = try Material()
        defer { material.remove() }
        try await TestCluster.withInProcessBroker(configure: material.configure(.saslSSL)) { bootstrap in
            for mechanism in [SaslMechanism.scramSHA256, .plain] {
                let wrong = try material.clientSecurity(tls: true, mechanism, password: "guess")
                do {
                    _ = try await KafkaConnection.connect(host: bootstrap.host, port: bootstrap.port, security: wrong)
                    Issue.record("\(mechanism) let a wrong password in")
                } catch let error as KafkaClientError {
                    #expect(
                        error.description.hasPrefix("authentication failed: SASL_AUTHENTICATION_FAILED"),
                        "\(error)"
                    )
                }
            }
            // TLS but no login: the broker closes the connection at the first request past ApiVersions.
            let anonymous = try await KafkaConnection.connect(
                host: bootstrap.host,
                port: bootstrap.port,
                security: try material.clientSecurity(tls: true, nil)
            )
            await #expect(throws: KafkaClientError.self) { try await anonymous.send(MetadataRequest(topics: nil)) }
            await anonymous.close()
        }
    }
}
