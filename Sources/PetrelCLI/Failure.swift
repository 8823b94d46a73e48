import ArgumentParser
import Foundation
import NIOCore
import PetrelStorage

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The exit statuses of every petrel command (also in `petrel --help` and docs/cli.md).
enum ExitStatus {
    static let failure: Int32 = 1
    /// A usage error: an unknown flag, a missing or malformed value (EX_USAGE, as ArgumentParser uses).
    static let usage: Int32 = 64
}

/// Prints one sentence to standard error and exits non-zero: the CLI's way of failing.
func fail(_ sentence: String, code: Int32 = ExitStatus.failure) -> ExitCode {
    var line = "petrel: " + sentence
    if !line.hasSuffix(".") { line += "." }
    writeToStandardError(line + "\n")
    return ExitCode(code)
}

func writeToStandardError(_ text: String) {
    var text = text
    text.withUTF8 { bytes in _ = write(STDERR_FILENO, bytes.baseAddress, bytes.count) }
}

/// An error in words: the operating system's reason (`No such file or directory`, `Permission
/// denied`) where there is one, never a Foundation or NIO dump.
func reason(_ error: any Error) -> String {
    switch error {
    case let error as IOError:
        return String(cString: strerror(error.errnoCode))
    case let error as CocoaError:
        if let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if let code = posixCode(error.code) { return String(cString: strerror(code)) }
        return error.localizedDescription
    default:
        return "\(error)"
    }
}

private func posixCode(_ code: CocoaError.Code) -> Int32? {
    switch code {
    case .fileNoSuchFile, .fileReadNoSuchFile: ENOENT
    case .fileReadNoPermission, .fileWriteNoPermission: EACCES
    case .fileWriteOutOfSpace: ENOSPC
    case .fileWriteVolumeReadOnly: EROFS
    case .fileWriteFileExists: EEXIST
    default: nil
    }
}
