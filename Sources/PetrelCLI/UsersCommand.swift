import ArgumentParser
import PetrelBroker
import PetrelSASL

#if canImport(Glibc)
import Glibc
#endif

/// `petrel users`: the users a SASL listener lets in. Edits the users file (SCRAM-SHA-256 salted keys,
/// no passwords); a running broker picks changes up at the next authentication.
struct UsersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users",
        abstract: "Add, list and remove the users of SASL listeners (PLAIN and SCRAM-SHA-256).",
        subcommands: [Add.self, List.self, Remove.self]
    )

    struct FileOptions: ParsableArguments {
        @Option(help: "The broker's data directory; the users file is users.json inside it.")
        var data: String = "./petrel-data"
        @Option(help: "The users file, if not the data directory's (the broker's --users-file).")
        var usersFile: String?

        var path: String { usersFile ?? ListenerSecurity.usersFilePath(dataDirectory: data) }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Add a user, or set a user's password. The password is read from standard input unless --password is given."
        )
        @Argument(help: "The user name.") var user: String
        @Option(
            help: "The password (visible to other users of this machine in the process list; prefer standard input)."
        )
        var password: String?
        @Option(help: "SCRAM iterations (at least 4096).") var iterations: Int = 8192
        @OptionGroup var file: FileOptions

        func validate() throws {
            if user.isEmpty { throw ValidationError("The user name must not be empty.") }
            if iterations < ScramCredential.minimumIterations {
                throw ValidationError("--iterations must be at least \(ScramCredential.minimumIterations).")
            }
        }

        func run() async throws {
            guard let password = password ?? readLine(strippingNewline: true), !password.isEmpty else {
                throw fail("no password given: pass --password or write it to standard input")
            }
            do {
                var users = try UserStore.load(file.path)
                let existed = users.users[user] != nil
                users.users[user] = ScramCredential(password: password, iterations: iterations)
                try UserStore.save(users, to: file.path)
                print(existed ? "changed the password of \(user)" : "added user \(user)")
            } catch {
                throw fail("\(reason(error))")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the users, one per line.")
        @OptionGroup var file: FileOptions

        func run() async throws {
            do {
                for user in try UserStore.load(file.path).users.keys.sorted() { print(user) }
            } catch {
                throw fail("\(reason(error))")
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a user. Its open connections stay open until they close."
        )
        @Argument(help: "The user name.") var user: String
        @OptionGroup var file: FileOptions

        func run() async throws {
            do {
                var users = try UserStore.load(file.path)
                guard users.users.removeValue(forKey: user) != nil else {
                    throw fail("there is no user \(user) in \(file.path)")
                }
                try UserStore.save(users, to: file.path)
                print("removed user \(user)")
            } catch let exit as ExitCode {
                throw exit
            } catch {
                throw fail("\(reason(error))")
            }
        }
    }
}
