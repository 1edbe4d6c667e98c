import Logging

/// The metadata one log event carries, shared by both handlers: the handler's own metadata, overridden by
/// the metadata provider's, overridden by the event's explicit metadata (swift-log's precedence).
/// An error attached to the event is logged under `error` unless the event already has that key.
enum EffectiveMetadata {
    static func merge(
        base: Logger.Metadata,
        provider: Logger.MetadataProvider?,
        explicit: Logger.Metadata?,
        error: (any Error)?
    ) -> Logger.Metadata {
        var metadata = base
        if let provided = provider?.get(), !provided.isEmpty {
            metadata.merge(provided, uniquingKeysWith: { _, provided in provided })
        }
        if let explicit, !explicit.isEmpty {
            metadata.merge(explicit, uniquingKeysWith: { _, explicit in explicit })
        }
        if let error, metadata["error"] == nil {
            metadata["error"] = .string("\(error)")
        }
        return metadata
    }
}
