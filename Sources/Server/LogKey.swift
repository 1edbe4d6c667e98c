/// The one set of log metadata keys: every metadata key the daemon logs is named here. Their values are sanitised before they get here.
enum LogKey {
    static let session = "session"
    static let user = "user"
    static let client = "client"
    static let listener = "listener"
    static let backend = "backend"
    static let tls = "tls"
    static let error = "error"
    static let address = "address"
    static let ending = "ending"
    static let listed = "listed"
    static let retrieved = "retrieved"
    static let retrievedBytes = "retrieved_bytes"
    static let top = "top"
    static let deleted = "deleted"
    static let retention = "retention"
    static let duration = "duration"
    /// Which connection limit refused a client: `total` or `per-ip`.
    static let limit = "limit"
}
