import Config
import Gateway
import Routing
import TLS
import Transport

/// Asks the `auth_http` service where a login goes (Routing/AuthHTTP.swift has the protocol).
///
/// Runs on its own event loop, off the session loops: a slow service delays the logins waiting for
/// it and nothing else. Bounded: at most `maxPending` requests at once (more are answered as an outage
/// at once), each with one deadline for connect, request and answer, and an answer head of at most
/// 16 KiB. With `cache_ttl`, an OK answer is reused for the same user and password (kept as a SHA-256
/// digest, never in clear) in a table of at most `maxCached` entries.
final class AuthHTTPClient: @unchecked Sendable {
    static let maxPending = 512
    static let maxCached = 10_000

    private let loop: EventLoop
    // Confined to `loop`.
    private var pending = 0
    private var cache: [CacheKey: (answer: AuthHTTP.Answer, expires: ContinuousClock.Instant)] = [:]

    init(loop: EventLoop) {
        self.loop = loop
    }

    struct CacheKey: Hashable {
        var endpoint: String
        var user: String
        var passwordDigest: [UInt8]
    }

    /// `completion` runs on `loop` (the caller hops back to its own), exactly once.
    func resolve(_ request: RouteRequest, settings: PopGateConfig.AuthHTTPSettings,
                 completion: @escaping @Sendable (Result<AuthHTTP.Answer, AuthHTTPFailure>) -> Void) {
        loop.execute { [self] in
            let key = settings.cacheTTL > .zero
                ? CacheKey(endpoint: "\(settings.endpoint.host):\(settings.endpoint.port)\(settings.endpoint.path)", user: request.user,
                           passwordDigest: Digest.sha256(request.password.bytes))
                : nil
            if let key, let hit = cache[key] {
                if hit.expires > .now { return completion(.success(hit.answer)) }
                cache[key] = nil
            }
            guard pending < Self.maxPending else {
                return completion(.failure(AuthHTTPFailure("\(Self.maxPending) requests already waiting for the service")))
            }
            pending += 1
            let exchange = Exchange(loop: loop, request: AuthHTTP.request(request, endpoint: settings.endpoint)) { [self] result in
                pending -= 1
                if let key, case .success(let answer) = result, case .ok = answer {
                    remember(key, answer, until: .now + settings.cacheTTL)
                }
                completion(result)
            }
            exchange.start(endpoint: settings.endpoint, timeout: settings.timeout)
        }
    }

    private func remember(_ key: CacheKey, _ answer: AuthHTTP.Answer, until expires: ContinuousClock.Instant) {
        if cache.count >= Self.maxCached {
            let now = ContinuousClock.now
            cache = cache.filter { $0.value.expires > now }
            guard cache.count < Self.maxCached else { return }
        }
        cache[key] = (answer, expires)
    }
}

struct AuthHTTPFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// One request to the service; confined to its loop.
private final class Exchange: @unchecked Sendable {
    private let loop: EventLoop
    private let request: [UInt8]
    private let completion: (Result<AuthHTTP.Answer, AuthHTTPFailure>) -> Void
    private var parser = AuthHTTP.ResponseParser()
    private var connection: Connection?
    private var timer: Transport.Timer?
    private var done = false

    init(loop: EventLoop, request: [UInt8], completion: @escaping (Result<AuthHTTP.Answer, AuthHTTPFailure>) -> Void) {
        self.loop = loop
        self.request = request
        self.completion = completion
    }

    func start(endpoint: AuthHTTP.Endpoint, timeout: Duration) {
        timer = loop.schedule(after: timeout) { [self] in
            finish(.failure(AuthHTTPFailure("no answer within \(timeout)")))
        }
        Connection.connect(host: endpoint.host, port: endpoint.port, loop: loop, timeout: timeout) { [self] result in
            switch result {
            case .failure(let error):
                finish(.failure(AuthHTTPFailure("connect to \(endpoint.host):\(endpoint.port) failed: \(error)")))
            case .success(let connection):
                guard !done else {
                    connection.close(flush: false)
                    return
                }
                self.connection = connection
                connection.onRead = { [self] bytes in
                    if let answer = parser.append(bytes) { finish(.success(answer)) }
                }
                connection.onReadEOF = { [self] in finish(.success(parser.finish())) }
                connection.onClose = { [self] error in
                    finish(error.map { .failure(AuthHTTPFailure("connection failed: \($0)")) } ?? .success(parser.finish()))
                }
                connection.start()
                connection.write(request)
            }
        }
    }

    private func finish(_ result: Result<AuthHTTP.Answer, AuthHTTPFailure>) {
        guard !done else { return }
        done = true
        timer?.cancel()
        timer = nil
        connection?.onRead = nil
        connection?.onReadEOF = nil
        connection?.onClose = nil
        connection?.close(flush: false)
        connection = nil
        if case .success(.invalid(let why)) = result {
            completion(.failure(AuthHTTPFailure(why)))
        } else {
            completion(result)
        }
    }
}
