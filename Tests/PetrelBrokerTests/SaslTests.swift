import Foundation
import PetrelSASL
import PetrelTestSupport
import Testing

@testable import PetrelBroker

/// A connection's SASL state and the users file.
@Suite("SASL sessions and users")
struct SaslTests {
    @Test("a session refuses SaslAuthenticate before the handshake and unknown mechanisms")
    func sessionOrder() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let session = SaslSession(mechanisms: [.plain], users: UserStore(path: "\(directory.path)/users.json"))
        guard case .rejected(let code, _) = session.authenticate(Array("\0user\0pencil".utf8)) else {
            Issue.record("authenticated without a handshake")
            return
        }
        #expect(code == .illegalSASLState)
        let other = SaslSession(mechanisms: [.plain], users: UserStore(path: "\(directory.path)/users.json"))
        #expect(other.handshake(mechanism: "SCRAM-SHA-256") == .unsupportedSASLMechanism)
        #expect(other.handshake(mechanism: "PLAIN") == .none)
        #expect(!other.isAuthenticated)
    }

    @Test("the users file round-trips and a running store sees changes")
    func usersFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = "\(directory.path)/users.json"
        let store = UserStore(path: path)
        #expect(store.credential(for: "alice") == nil)
        var file = UserStore.UsersFile()
        file.users["alice"] = ScramCredential(password: "secret", iterations: 4096)
        try UserStore.save(file, to: path)
        #expect(store.credential(for: "alice")?.matches(password: "secret") == true)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(!(try String(contentsOfFile: path, encoding: .utf8)).contains("secret"))
        file.users["alice"] = nil
        try UserStore.save(file, to: path)
        #expect(store.credential(for: "alice") == nil)
    }
}
