#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A program a test runs could not be started, or was killed by a signal.
public struct ChildProcessError: Error, CustomStringConvertible {
    public let description: String
}

/// Runs a program found on the PATH with its output discarded, waits for it, and returns its exit
/// status. It uses posix_spawnp rather than Foundation's Process, whose `run()` crashed (a read past
/// a buffer inside it) while other tests ran in parallel.
public func runChildProcess(_ arguments: [String]) throws -> Int32 {
    precondition(!arguments.isEmpty, "no program to run")
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { for argument in argv { free(argument) } }
    var pid: pid_t = 0
    let spawned = posix_spawnp(&pid, arguments[0], &actions, nil, argv, environ)
    guard spawned == 0 else {
        throw ChildProcessError(description: "cannot start \(arguments[0]): \(String(cString: strerror(spawned)))")
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 {
        guard errno == EINTR else {
            throw ChildProcessError(description: "waiting for \(arguments[0]): \(String(cString: strerror(errno)))")
        }
    }
    // WIFEXITED and WEXITSTATUS, which Swift does not import.
    guard status & 0x7f == 0 else {
        throw ChildProcessError(description: "\(arguments[0]) was killed by signal \(status & 0x7f)")
    }
    return (status >> 8) & 0xff
}
