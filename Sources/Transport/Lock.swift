import Glibc

/// A plain pthread mutex. Transport is an edge module limited to Glibc and Dispatch, so this stands in for
/// `Synchronization.Mutex`; it guards the few fields touched from more than one queue.
final class Lock: @unchecked Sendable {
    // The mutex lives on the heap: a pthread_mutex_t must never move once initialised.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let result = pthread_mutex_init(mutex, nil)
        precondition(result == 0, "pthread_mutex_init failed: \(result)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
