import Foundation
import PetrelSASL
import Testing

/// The SASL mechanisms on their own, against the published test vectors and the ways they must fail.
@Suite("SASL mechanisms")
struct MechanismTests {
    // RFC 7677 section 3: user "user", password "pencil".
    static let salt = Array(Data(base64Encoded: "W22ZaJ0SNY7soEsUEjb6gQ==")!)
    static let credential = ScramCredential(password: "pencil", salt: salt, iterations: 4096)

    @Test("SCRAM-SHA-256 reproduces RFC 7677's exchange and server signature")
    func rfc7677() throws {
        var exchange = ScramServerExchange { $0 == "user" ? Self.credential : nil }
        guard case .challenge(let first) = try exchange.receive(Array("n,,n=user,r=rOprNGfwEbeRWgbNEkqO".utf8)) else {
            Issue.record("no challenge")
            return
        }
        let serverFirst = String(decoding: first, as: UTF8.self)
        #expect(serverFirst.hasPrefix("r=rOprNGfwEbeRWgbNEkqO"))
        #expect(serverFirst.hasSuffix(",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"))
        // The RFC's proof is for its own server nonce; compute ours the way a client does.
        let nonce = String(serverFirst.dropFirst(2).prefix { $0 != "," })
        let withoutProof = "c=biws,r=\(nonce)"
        let authMessage = "n=user,r=rOprNGfwEbeRWgbNEkqO,\(serverFirst),\(withoutProof)"
        let salted = Scram.saltedPassword("pencil", salt: Self.salt, iterations: 4096)
        let clientKey = Scram.hmac(key: salted, "Client Key")
        let proof = Scram.xor(clientKey, Scram.hmac(key: Scram.sha256(clientKey), authMessage))
        let final = "\(withoutProof),p=\(Data(proof).base64EncodedString())"
        guard case .success(let user, let last) = try exchange.receive(Array(final.utf8)) else {
            Issue.record("not authenticated")
            return
        }
        #expect(user == "user")
        let expectedSignature = Scram.hmac(key: Scram.hmac(key: salted, "Server Key"), authMessage)
        #expect(String(decoding: last, as: UTF8.self) == "v=\(Data(expectedSignature).base64EncodedString())")
    }

    @Test("the primitives give RFC 7677's client proof and server signature for its messages")
    func rfcProofAndSignature() {
        let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
        let authMessage = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=\(nonce),s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=\(nonce)"
        let salted = Scram.saltedPassword("pencil", salt: Self.salt, iterations: 4096)
        let clientKey = Scram.hmac(key: salted, "Client Key")
        let proof = Scram.xor(clientKey, Scram.hmac(key: Self.credential.storedKey, authMessage))
        #expect(Data(proof).base64EncodedString() == "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
        let signature = Scram.hmac(key: Self.credential.serverKey, authMessage)
        #expect(Data(signature).base64EncodedString() == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
        #expect(Self.credential.matches(password: "pencil"))
        #expect(!Self.credential.matches(password: "pencil "))
    }

    @Test("SCRAM with a wrong password, an unknown user or a tampered nonce fails at the proof")
    func scramFailures() throws {
        for (user, password, tamper) in [
            ("user", "wrong", false), ("nobody", "pencil", false), ("user", "pencil", true),
        ] {
            var exchange = ScramServerExchange { $0 == "user" ? Self.credential : nil }
            guard case .challenge(let first) = try exchange.receive(Array("n,,n=\(user),r=abc".utf8)) else {
                Issue.record("no challenge for \(user)")
                continue
            }
            let serverFirst = String(decoding: first, as: UTF8.self)
            let nonce = String(serverFirst.dropFirst(2).prefix { $0 != "," }) + (tamper ? "x" : "")
            let withoutProof = "c=biws,r=\(nonce)"
            let salted = Scram.saltedPassword(password, salt: Self.salt, iterations: 4096)
            let clientKey = Scram.hmac(key: salted, "Client Key")
            let proof = Scram.xor(
                clientKey,
                Scram.hmac(key: Scram.sha256(clientKey), "n=\(user),r=abc,\(serverFirst),\(withoutProof)")
            )
            #expect(throws: ScramServerExchange.Failure.self) {
                try exchange.receive(Array("\(withoutProof),p=\(Data(proof).base64EncodedString())".utf8))
            }
        }
    }

    @Test("PLAIN lets in the right password only")
    func plain() throws {
        let lookup: @Sendable (String) -> ScramCredential? = { $0 == "user" ? Self.credential : nil }
        #expect(try PlainAuthentication.authenticate(Array("\0user\0pencil".utf8), lookup: lookup) == "user")
        #expect(throws: PlainAuthentication.Failure.self) {
            try PlainAuthentication.authenticate(Array("\0user\0pen".utf8), lookup: lookup)
        }
        #expect(throws: PlainAuthentication.Failure.self) {
            try PlainAuthentication.authenticate(Array("\0eve\0pencil".utf8), lookup: lookup)
        }
        #expect(throws: PlainAuthentication.Failure.self) {
            try PlainAuthentication.authenticate(Array("garbage".utf8), lookup: lookup)
        }
        #expect(throws: PlainAuthentication.Failure.self) {
            try PlainAuthentication.authenticate(Array("admin\0user\0pencil".utf8), lookup: lookup)
        }
    }

    @Test("the client side and the server side of SCRAM agree, and a wrong password fails at the proof")
    func clientAgainstServer() throws {
        for (password, succeeds) in [("pencil", true), ("pencil!", false)] {
            var server = ScramServerExchange { $0 == "user" ? Self.credential : nil }
            var client = ScramClientExchange(user: "user", password: password)
            guard case .challenge(let serverFirst) = try server.receive(client.clientFirst()) else {
                Issue.record("no challenge")
                return
            }
            let clientFinal = try client.clientFinal(serverFirst: serverFirst)
            if succeeds {
                guard case .success(let user, let serverFinal) = try server.receive(clientFinal) else {
                    Issue.record("not authenticated")
                    return
                }
                #expect(user == "user")
                try client.verify(serverFinal: serverFinal)
                #expect(throws: ScramClientExchange.Failure.self) {
                    try client.verify(serverFinal: Array("v=AAAA".utf8))
                }
            } else {
                #expect(throws: ScramServerExchange.Failure.self) { try server.receive(clientFinal) }
            }
        }
    }

    @Test("a client refuses a server nonce that does not extend its own, and too few iterations")
    func clientChecksTheServer() throws {
        var client = ScramClientExchange(user: "user", password: "pencil")
        _ = client.clientFirst()
        #expect(throws: ScramClientExchange.Failure.self) {
            try client.clientFinal(serverFirst: Array("r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".utf8))
        }
        let nonce = String(decoding: client.clientFirst(), as: UTF8.self).components(separatedBy: "r=").last!
        #expect(throws: ScramClientExchange.Failure.self) {
            try client.clientFinal(serverFirst: Array("r=\(nonce)xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1".utf8))
        }
    }
}
