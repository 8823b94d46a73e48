import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Prints one sentence to standard error and exits non-zero: the CLI's way of failing.
func fail(_ sentence: String, code: Int32 = 1) -> ExitCode {
    var line = "petrel: " + sentence
    if !line.hasSuffix(".") { line += "." }
    writeToStandardError(line + "\n")
    return ExitCode(code)
}

func writeToStandardError(_ text: String) {
    var text = text
    text.withUTF8 { bytes in _ = write(STDERR_FILENO, bytes.baseAddress, bytes.count) }
}
