#!/usr/bin/python3
"""Stand-in for /usr/sbin/popgate, used by nspawn-smoke.sh to test the systemd units themselves.

It speaks exactly the systemd protocol PopGate promises (socket activation with named fds,
Type=notify with READY/STATUS/RELOADING/STOPPING/WATCHDOG, SIGHUP reload, SIGTERM exit 0) and
answers every TCP connection with one line of JSON describing what the sandbox let it do, so the
probe can assert on the sandbox from the outside. The daemon has no state directory and cannot
write anywhere (ProtectSystem=strict), which is why the facts travel over the socket.

Usage (as ExecStart): fake-popgate.py serve --config FILE
Only the standard library; no ctypes (MemoryDenyWriteExecute=yes would refuse its trampolines).
"""
import errno
import json
import mmap
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import time

SD_LISTEN_FDS_START = 3


def notify(state):
    """sd_notify(3) by hand: one datagram to $NOTIFY_SOCKET ('@' = abstract namespace)."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        s.connect(path)
        s.sendall(state.encode())
    return True


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def attempt(fn):
    """Run fn; return "ok" or the errno name it failed with."""
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def passed_sockets():
    """sd_listen_fds_with_names(unset_environment=1)."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return None
    count = int(os.environ.get("LISTEN_FDS", "0"))
    names = os.environ.get("LISTEN_FDNAMES", "").split(":") if count else []
    for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(key, None)
    result = {}
    for i in range(count):
        fd = SD_LISTEN_FDS_START + i
        name = names[i] if i < len(names) else "unknown"
        sock = socket.socket(fileno=fd)
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        result[name] = (sock, listening)
    return result


def read_status_field(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split()[1]
    return None


def sandbox_facts(config_path):
    """What the sandbox lets this process do; the probe compares these with expectations."""
    facts = {}
    facts["uid"] = os.getuid()
    facts["euid"] = os.geteuid()
    facts["user"] = os.environ.get("USER")
    facts["cap_eff"] = read_status_field("CapEff")
    facts["cap_bnd"] = read_status_field("CapBnd")
    facts["no_new_privs"] = read_status_field("NoNewPrivs")
    facts["seccomp"] = read_status_field("Seccomp")
    facts["umask"] = "%04o" % os.umask(0o077)
    facts["read_config"] = attempt(lambda: open(config_path, "rb").read())
    key = None
    try:
        with open(config_path) as f:
            for line in f:
                stripped = line.strip()
                if stripped.startswith("key:"):
                    key = stripped.split(":", 1)[1].split("#")[0].strip()
    except OSError:
        pass
    facts["key_path"] = key
    facts["read_key"] = attempt(lambda: open(key, "rb").read()) if key else "no key in config"
    facts["write_etc"] = attempt(lambda: open("/etc/popgate/written-by-service", "wb"))
    facts["write_usr"] = attempt(lambda: open("/usr/written-by-service", "wb"))
    facts["write_var_tmp"] = attempt(lambda: open("/var/tmp/written-by-service", "wb"))
    facts["tmp_is_private"] = len(os.listdir("/tmp")) == 0 or attempt(lambda: os.listdir("/tmp"))
    facts["list_home"] = attempt(lambda: os.listdir("/home"))
    facts["list_root_home"] = attempt(lambda: os.listdir("/root"))
    facts["proc_pid1_visible"] = os.path.exists("/proc/1/status")
    facts["proc_cpuinfo_visible"] = os.path.exists("/proc/cpuinfo")
    facts["dev_entries"] = sorted(os.listdir("/dev"))
    facts["mmap_wx"] = attempt(lambda: mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC))
    # Both calls only re-set the current values. sched_setaffinity is in @resources and must be
    # refused; setpriority is deliberately allowed again (see popgate.service). setrlimit(3) is no
    # probe for @resources: glibc implements it with prlimit64, which @system-service allows.
    facts["sched_setaffinity"] = attempt(lambda: os.sched_setaffinity(0, os.sched_getaffinity(0)))
    facts["setpriority"] = attempt(lambda: os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0)))
    facts["nofile_soft"] = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    facts["setuid0"] = attempt(lambda: os.setuid(0))
    facts["sethostname"] = attempt(lambda: socket.sethostname("evil"))
    facts["af_netlink"] = attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close())
    facts["af_packet"] = attempt(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close())
    facts["af_inet_stream"] = attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close())
    facts["af_inet6_stream"] = attempt(lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close())
    facts["unshare_net"] = unshare_net()
    return facts


def unshare_net():
    """unshare(CLONE_NEWNET) through util-linux unshare(1) (os.unshare needs Python 3.12)."""
    p = subprocess.run(["/usr/bin/unshare", "--net", "/bin/true"], capture_output=True, text=True)
    if p.returncode == 0:
        return "ok"
    return "EPERM" if "Operation not permitted" in p.stderr else p.stderr.strip()


def connect_out(port):
    """An outgoing TCP connection, the way PopGate reaches its IMAP backend (here: to itself)."""
    socket.create_connection(("127.0.0.1", port), timeout=2).close()


def journal(message, **fields):
    """One native-protocol journal entry, as PopGate's JournalLogHandler writes them."""
    lines = ["MESSAGE=" + message, "PRIORITY=6", "SYSLOG_IDENTIFIER=popgate"]
    lines += ["POPGATE_%s=%s" % (k.upper(), v) for k, v in sorted(fields.items())]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        s.sendto(("\n".join(lines) + "\n").encode(), "/run/systemd/journal/socket")


def main():
    if len(sys.argv) != 4 or sys.argv[1] != "serve" or sys.argv[2] != "--config":
        log("usage: fake-popgate.py serve --config FILE")
        return 2
    config_path = sys.argv[3]
    started = time.monotonic()
    listeners = passed_sockets()
    if not listeners:
        log("not socket-activated")
        return 1
    reloads = 0
    sessions = 0
    pending = {"hup": False, "term": False}
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def on_signal(signum, _frame):
        pending["hup" if signum == signal.SIGHUP else "term"] = True
        os.write(wake_w, b"x")

    signal.signal(signal.SIGHUP, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    watchdog_usec = int(os.environ.get("WATCHDOG_USEC", "0"))
    if os.environ.get("WATCHDOG_PID", str(os.getpid())) != str(os.getpid()):
        watchdog_usec = 0
    interval = watchdog_usec / 2e6 if watchdog_usec else None
    last_ping = time.monotonic()

    facts = sandbox_facts(config_path)
    facts["outgoing_tcp"] = attempt(lambda: connect_out(110))
    names = {name: listening for name, (_, listening) in listeners.items()}
    log("fake-popgate: listeners %s, watchdog %s us" % (json.dumps(names, sort_keys=True), watchdog_usec))
    notify("READY=1\nSTATUS=serving %d listeners" % len(listeners))

    by_fd = {sock.fileno(): (name, sock) for name, (sock, _) in listeners.items()}
    while True:
        timeout = None
        if interval is not None:
            timeout = max(0.0, last_ping + interval - time.monotonic())
        readable, _, _ = select.select(list(by_fd) + [wake_r], [], [], timeout)
        if interval is not None and time.monotonic() - last_ping >= interval:
            notify("WATCHDOG=1")
            last_ping = time.monotonic()
        if wake_r in readable:
            os.read(wake_r, 64)
        if pending["term"]:
            notify("STOPPING=1")
            log("fake-popgate: SIGTERM, exiting 0")
            return 0
        if pending["hup"]:
            pending["hup"] = False
            now_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            notify("RELOADING=1\nMONOTONIC_USEC=%d" % now_usec)
            reloads += 1
            facts["read_config"] = attempt(lambda: open(config_path, "rb").read())
            facts["read_key"] = attempt(lambda: open(facts["key_path"], "rb").read()) if facts["key_path"] else "no key"
            log("fake-popgate: reloaded (%d)" % reloads)
            notify("READY=1\nSTATUS=reloaded %d times" % reloads)
        for fd in readable:
            if fd not in by_fd:
                continue
            name, sock = by_fd[fd]
            try:
                conn, _ = sock.accept()
                with conn:
                    reply = dict(facts, listener=name, pid=os.getpid(), reloads=reloads,
                                 listening=names, uptime=round(time.monotonic() - started, 1))
                    conn.sendall(("+OK " + json.dumps(reply, sort_keys=True) + "\r\n").encode())
            except OSError as e:
                log("fake-popgate: connection on %s failed: %s" % (name, e))
                continue
            sessions += 1
            journal("session ended", session="fake-%d" % sessions, user="alice", listener=name)


if __name__ == "__main__":
    sys.exit(main())
