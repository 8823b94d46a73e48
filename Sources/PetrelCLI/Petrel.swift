import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

@main
struct Petrel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "petrel",
        abstract: "A Kafka-compatible, log-structured message broker and its tools.",
        discussion: """
            Exit status: 0 on success, 1 when a command fails, 64 for a usage error (an unknown flag, a \
            missing or malformed value). Every failure is one sentence on standard error, starting "petrel: ".
            """,
        subcommands: [
            BrokerCommand.self, ProduceCommand.self, ConsumeCommand.self, TopicsCommand.self, GroupsCommand.self,
            ConfigsCommand.self, TransactionsCommand.self, UsersCommand.self,
            PerfCommand.self,
        ]
    )
}

extension Petrel {
    /// ArgumentParser's entry point, except that every failure is one `petrel: …` sentence on standard
    /// error: usage errors exit 64 and name the help to read, failures exit 1.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let code as ExitCode {
            Glibc.exit(code.rawValue)  // already said
        } catch {
            switch exitCode(for: error) {
            case .success:  // --help, help, --version
                print(fullMessage(for: error))
                Glibc.exit(0)
            case .validationFailure:
                Glibc.exit(usageFailure(message(for: error)))
            default:
                Glibc.exit(fail(reason(error)).rawValue)
            }
        }
        Glibc.exit(0)
    }

    /// `petrel: missing expected argument '--topic <topic>'; see 'petrel produce --help'.`
    private static func usageFailure(_ message: String) -> Int32 {
        var text = message.split(whereSeparator: \.isNewline).map { String($0).trimmingSpaces() }
            .filter { !$0.isEmpty }.joined(separator: "; ")
        while text.hasSuffix(".") { text.removeLast() }
        if let first = text.first, first.isUppercase, text.dropFirst().first?.isLowercase == true {
            text = first.lowercased() + text.dropFirst()
        }
        return fail("\(text); see '\(commandPath()) --help'", code: ExitStatus.usage).rawValue
    }

    /// The subcommands named on the command line, for pointing at the right help.
    private static func commandPath() -> String {
        var path = ["petrel"]
        var type: any ParsableCommand.Type = Petrel.self
        for argument in CommandLine.arguments.dropFirst() {
            guard let next = type.configuration.subcommands.first(where: { $0._commandName == argument }) else { break }
            path.append(argument)
            type = next
        }
        return path.joined(separator: " ")
    }
}
