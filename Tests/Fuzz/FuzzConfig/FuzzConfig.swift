import Config
import FuzzSupport

// The configuration loader (Sources/Config): `ConfigLoader.parse(yaml:)` on arbitrary text.
//
// Input: the YAML text (invalid UTF-8 is repaired, as `String(decoding:)` does).
//
// Checks: nothing traps (Yams, the validator, the value parsers); the outcome is either a config or
// a ConfigError with at least one problem; every problem and warning prints (line numbers ≥ 1 where
// given) and a valid config's listeners are not empty.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let yaml = String(decoding: input.bytes, as: UTF8.self)
    do {
        let loaded = try ConfigLoader.parse(yaml: yaml, file: "fuzz.yaml")
        for warning in loaded.warnings {
            check(!warning.description.isEmpty, "empty warning")
            check(warning.line.map { $0 >= 1 } ?? true, "warning with line \(warning.line ?? 0)")
        }
        check(!loaded.config.listeners.isEmpty, "a config without listeners was accepted", context: input.bytes)
    } catch {
        check(!error.problems.isEmpty, "ConfigError without problems", context: input.bytes)
        for problem in error.problems {
            check(!problem.description.isEmpty, "empty problem")
            check(problem.line.map { $0 >= 1 } ?? true, "problem with line \(problem.line ?? 0): \(problem)")
        }
        _ = error.description
    }
    return 0
}
