import CoreMetrics
import Prometheus

/// The metrics backend: a Prometheus registry behind swift-metrics. The executable bootstraps
/// swift-metrics with `factory` once, when `metrics:` is configured; the metrics endpoint serves
/// `exposition()`.
///
/// The factory gives each metric its `# HELP` text (and histogram buckets) from
/// `ServerMetrics.catalog`: swift-metrics itself has no help texts, and Prometheus' own linter
/// (`promtool check metrics`) wants one for every metric.
public final class PrometheusExport: Sendable {
    public let registry = PrometheusCollectorRegistry()

    public init() {}

    /// The swift-metrics factory to bootstrap with.
    public var factory: any MetricsFactory { HelpfulPrometheusFactory(registry: registry) }

    /// The Prometheus text exposition format (version 0.0.4) of every registered metric.
    public func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 * 1024)
        registry.emit(into: &buffer)
        return buffer
    }
}

/// swift-metrics → `PrometheusCollectorRegistry`, with help texts and buckets by metric name.
struct HelpfulPrometheusFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry

    static let defaultBuckets: [Duration] = [.milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                                             .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10)]

    private func descriptor(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: ServerMetrics.catalog[label]?.help ?? "")
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: descriptor(label), labels: dimensions) }
        let buckets = (ServerMetrics.catalog[label]?.buckets ?? Self.defaultBuckets).map { Double($0.nanoseconds) / 1e9 }
        return registry.makeValueHistogram(descriptor: descriptor(label), labels: dimensions, buckets: buckets)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        let buckets = ServerMetrics.catalog[label]?.buckets ?? Self.defaultBuckets
        return registry.makeDurationHistogram(descriptor: descriptor(label), labels: dimensions, buckets: buckets)
    }

    // Series live as long as the process: nothing is ever destroyed.
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyMeter(_ handler: any MeterHandler) {}
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}
}
