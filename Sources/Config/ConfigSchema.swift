/// Every key a configuration file may hold, read from the key lists the validator checks each
/// section against (an unknown key is an error). docs/man/popgate.yaml.5 documents each key path;
/// ConfigTests' ConfigSchemaTests fail for a key path that is accepted but not documented there.
public enum ConfigSchema {
    /// A section's path (`""` for the top level, `listeners[]` for each entry of the list) and
    /// the keys it accepts.
    public static let sections: [(path: String, keys: [String])] = [
        ("", ConfigValidator.rootKeys),
        ("listeners[]", ConfigValidator.listenerKeys),
        ("tls", ConfigValidator.tlsKeys),
        ("backend", ConfigValidator.backendKeys),
        ("retention", ConfigValidator.retentionKeys),
        ("timeouts", ConfigValidator.timeoutKeys),
        ("auth", ConfigValidator.authKeys),
        ("limits", ConfigValidator.limitKeys),
        ("log", ConfigValidator.logKeys),
        // `policies.<name>.retention` and `routes[].backend` take the keys of `retention` and
        // `backend`, documented once there.
        ("policies.<name>", ConfigValidator.policyKeys),
        ("routes[]", ConfigValidator.routeKeys),
        ("auth_http", ConfigValidator.authHTTPKeys),
        ("metrics", ConfigValidator.metricsKeys),
    ]

    /// Every key path, in file order: `listeners`, `listeners[].name`, ..., `log.target`.
    public static var keyPaths: [String] {
        sections.flatMap { section in
            section.keys.map { section.path.isEmpty ? $0 : "\(section.path).\($0)" }
        }
    }
}
