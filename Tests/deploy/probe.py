#!/usr/bin/python3
"""Runs INSIDE the throw-away container started by nspawn-smoke.sh, as root, after boot.

Drives the shipped units through their life cycle with systemctl and plain sockets and writes
one line per check to /out/report.txt ("ok ..." / "FAIL ..."), then /out/result (PASS or FAIL).
With the stand-in daemon (fake-popgate.py) it also checks what the sandbox allowed, from the
JSON line the stand-in sends on every connection. With the real PopGate it checks greetings and
the implicit-TLS handshake instead.
"""
import json
import os
import socket
import ssl
import subprocess
import sys
import time

MODE = os.environ.get("PROBE_MODE", "fake")  # fake | real | deb (the real PopGate from the .deb)
REAL = MODE in ("real", "deb")
report = []
failed = False


def check(ok, what, detail=""):
    global failed
    failed |= not ok
    report.append(("ok   " if ok else "FAIL ") + what + (" -- " + str(detail) if detail and not ok else ""))


def sh(*args):
    p = subprocess.run(args, capture_output=True, text=True)
    return p.returncode, (p.stdout + p.stderr).strip()


def show(unit, *props):
    _, out = sh("systemctl", "show", unit, *("-p" + p for p in props))
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def fetch_line(host, port, use_tls=False):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as raw:
        raw.settimeout(20)
        raw.connect((host, port))
        conn = raw
        if use_tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            conn = ctx.wrap_socket(raw)
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.decode(errors="replace")


def hello(host, port, listener, use_tls=False):
    """Connect, check the greeting; returns the stand-in's facts (fake) or {} (real)."""
    try:
        line = fetch_line(host, port, use_tls)
    except OSError as e:
        check(False, "connect %s:%d" % (host, port), e)
        return {}
    check(line.startswith("+OK"), "greeting on %s:%d" % (host, port), line[:200])
    if MODE != "fake" or not line.startswith("+OK "):
        return {}
    facts = json.loads(line[4:])
    check(facts.get("listener") == listener, "%s:%d arrives as FileDescriptorName=%s" % (host, port, listener), facts.get("listener"))
    return facts


def wait_active(unit, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if show(unit, "ActiveState").get("ActiveState") == "active":
            return True
        time.sleep(0.2)
    return False


def pid1_hard_nofile():
    with open("/proc/1/limits") as limits:
        for line in limits:
            if line.startswith("Max open files"):
                hard = line.split()[4]
                return 1 << 62 if hard == "unlimited" else int(hard)
    return 1 << 62


def sandbox_checks(f):
    check(f.get("user") == "popgate" and f.get("uid", 0) != 0, "runs as the sysusers user popgate, not root", (f.get("user"), f.get("uid")))
    check(f.get("listening") == {"pop3": True, "pop3s": True}, "exactly two listening fds named pop3 and pop3s", f.get("listening"))
    check(f.get("cap_eff") == "0000000000000000", "no effective capabilities", f.get("cap_eff"))
    check(f.get("cap_bnd") == "0000000000000000", "empty capability bounding set", f.get("cap_bnd"))
    check(f.get("no_new_privs") == "1", "NoNewPrivileges", f.get("no_new_privs"))
    check(f.get("seccomp") == "2", "seccomp filter active", f.get("seccomp"))
    check(f.get("umask") == "0077", "UMask=0077", f.get("umask"))
    # systemd cannot raise a limit above its own hard limit without CAP_SYS_RESOURCE (a container
    # may lack it): expect min(65536, PID 1's hard limit).
    expected = min(65536, pid1_hard_nofile())
    check(f.get("nofile_soft") == expected, "LimitNOFILE=65536 (capped at %d here)" % expected, f.get("nofile_soft"))
    check(f.get("read_config") == "ok", "reads /etc/popgate/popgate.yaml", f.get("read_config"))
    check(f.get("read_key") == "ok", "reads the TLS key (root:popgate 0640)", f.get("read_key"))
    check(f.get("write_etc") == "EROFS", "/etc is read-only", f.get("write_etc"))
    check(f.get("write_usr") == "EROFS", "/usr is read-only", f.get("write_usr"))
    check(f.get("write_var_tmp") == "ok", "private /var/tmp is writable", f.get("write_var_tmp"))
    check(f.get("list_root_home") != "ok", "ProtectHome (/root inaccessible)", f.get("list_root_home"))
    check(f.get("proc_pid1_visible") is False, "ProtectProc=invisible hides PID 1", f.get("proc_pid1_visible"))
    check(f.get("proc_cpuinfo_visible") is False, "ProcSubset=pid hides /proc/cpuinfo", f.get("proc_cpuinfo_visible"))
    allowed_dev = {"char", "core", "fd", "full", "log", "mqueue", "null", "ptmx", "pts", "random", "shm",
                   "stderr", "stdin", "stdout", "tty", "urandom", "zero", "hugepages"}
    extra = sorted(set(f.get("dev_entries", ["?"])) - allowed_dev)
    check(not extra, "PrivateDevices: only pseudo devices in /dev", extra)
    check(f.get("mmap_wx") in ("EPERM", "EACCES"), "MemoryDenyWriteExecute refuses W+X mappings", f.get("mmap_wx"))
    check(f.get("sched_setaffinity") == "EPERM", "SystemCallFilter=~@resources (sched_setaffinity -> EPERM)", f.get("sched_setaffinity"))
    check(f.get("setpriority") == "ok", "setpriority re-allowed for libdispatch", f.get("setpriority"))
    check(f.get("setuid0") == "EPERM", "setuid(0) refused", f.get("setuid0"))
    check(f.get("sethostname") == "EPERM", "sethostname refused", f.get("sethostname"))
    check(f.get("af_netlink") == "EAFNOSUPPORT", "AF_NETLINK refused", f.get("af_netlink"))
    check(f.get("af_packet") == "EAFNOSUPPORT", "AF_PACKET refused", f.get("af_packet"))
    check(f.get("af_inet_stream") == "ok" and f.get("af_inet6_stream") == "ok", "AF_INET/AF_INET6 allowed", (f.get("af_inet_stream"), f.get("af_inet6_stream")))
    check(f.get("outgoing_tcp") == "ok", "outgoing TCP connection (to the backend) allowed", f.get("outgoing_tcp"))
    check(f.get("unshare_net") == "EPERM", "RestrictNamespaces", f.get("unshare_net"))


def package_checks():
    """What installing the .deb did (recorded by setup.sh right after apt install, before the test's
    configuration replaced the packaged one) and what it installed."""
    facts = dict(line.split("=", 1) for line in open("/out/installed.txt").read().splitlines() if "=" in line)
    check(facts.get("user") == "popgate:popgate", "postinst created the popgate user and group (systemd-sysusers)", facts.get("user"))
    check(facts.get("conffile") == "root:popgate 640", "/etc/popgate/popgate.yaml is root:popgate 0640", facts.get("conffile"))
    check(facts.get("etc_dir") == "root:popgate 750", "/etc/popgate is root:popgate 0750", facts.get("etc_dir"))
    for sock in ("popgate-pop3.socket", "popgate-pop3s.socket"):
        check(facts.get("enabled_" + sock) == "enabled", sock + " enabled on install", facts.get("enabled_" + sock))
        check(facts.get("active_" + sock) == "inactive", sock + " not started on install", facts.get("active_" + sock))
    check(facts.get("active_popgate.service") == "inactive", "popgate.service not started on install", facts.get("active_popgate.service"))
    exec_start = show("popgate.service", "ExecStart").get("ExecStart", "")
    check("path=/usr/sbin/popgate " in exec_start, "popgate.service runs /usr/sbin/popgate", exec_start)
    rc, out = sh("/usr/sbin/popgate", "--version")
    check(rc == 0 and out.startswith("popgate ") and "\nOpenSSL " in out, "popgate --version", out)
    env = dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat")
    for page, expect in (("popgate", "check-config"), ("popgate.yaml", "backend.forward_client")):
        p = subprocess.run(["man", page], capture_output=True, text=True, env=env)
        check(p.returncode == 0 and expect in p.stdout, "man " + page, (p.returncode, p.stderr[-200:]))
    rc, out = sh("bash", "-c", "source /usr/share/bash-completion/completions/popgate && complete -p popgate")
    check(rc == 0 and "popgate" in out, "bash completion installed", out)


def main():
    svc = "popgate.service"
    if MODE == "deb":
        package_checks()
    for sock in ("popgate-pop3.socket", "popgate-pop3s.socket"):
        check(wait_active(sock), sock + " is listening", show(sock, "ActiveState", "Result"))
    check(show(svc, "ActiveState")["ActiveState"] == "inactive", "popgate.service not started before the first connection")

    # Socket activation: the first connection starts the service, both fds arrive with their names.
    f110 = hello("127.0.0.1", 110, "pop3")
    check(wait_active(svc), "popgate.service active after the first connection (Type=notify READY=1)",
          show(svc, "ActiveState", "SubState", "Result"))
    f995 = hello("::1", 995, "pop3s", use_tls=REAL)
    hello("127.0.0.1", 995, "pop3s", use_tls=REAL)  # BindIPv6Only=both: v4 on the same socket
    hello("::1", 110, "pop3")
    pid = show(svc, "MainPID")["MainPID"]
    if MODE == "fake":
        check(f110.get("pid") is not None and f110.get("pid") == f995.get("pid"), "one process serves both sockets", (f110.get("pid"), f995.get("pid")))
        sandbox_checks(f110)
        check(show(svc, "StatusText")["StatusText"] == "serving 2 listeners", "STATUS= reaches systemd", show(svc, "StatusText"))

    # Watchdog: the test drop-in sets WatchdogSec=2s; a daemon that did not ping would be killed.
    time.sleep(5)
    st = show(svc, "MainPID", "ActiveState", "NRestarts", "WatchdogUSec")
    check(pid != "0" and st["MainPID"] == pid and st["ActiveState"] == "active" and st["NRestarts"] == "0",
          "watchdog pings keep the service alive (WatchdogUSec=%s)" % st.get("WatchdogUSec"), st)

    # Reload: SIGHUP via ExecReload, same process, sessions not dropped.
    rc, out = sh("systemctl", "reload", svc)
    check(rc == 0, "systemctl reload popgate", out)
    check(pid != "0" and show(svc, "MainPID")["MainPID"] == pid, "reload keeps the main process", show(svc, "MainPID"))
    if MODE == "fake":
        f = hello("127.0.0.1", 110, "pop3")
        check(f.get("reloads") == 1 and f.get("read_key") == "ok", "SIGHUP reached the daemon, key re-read", (f.get("reloads"), f.get("read_key")))
        check(show(svc, "StatusText")["StatusText"] == "reloaded 1 times", "status after RELOADING=1/READY=1", show(svc, "StatusText"))
    else:
        hello("127.0.0.1", 110, "pop3")

    # Journal: native fields written from inside the sandbox land in the journal under the unit.
    sh("journalctl", "--sync")
    rc, out = sh("journalctl", "-q", "--no-pager", "-o", "cat", "_SYSTEMD_UNIT=popgate.service", "POPGATE_LISTENER=pop3s")
    check(rc == 0 and "session ended" in out, "journalctl _SYSTEMD_UNIT=popgate.service POPGATE_LISTENER=pop3s finds sessions", out[:300])
    if MODE == "fake":
        rc, out = sh("journalctl", "-q", "--no-pager", "-o", "cat", "POPGATE_USER=alice")
        check(rc == 0 and "session ended" in out, "journalctl POPGATE_USER=alice finds entries", out[:300])

    # Live security score with a real PID 1 (the offline score is checked by check-security.sh).
    rc, out = sh("systemd-analyze", "security", "--no-pager", svc)
    score = [line for line in out.splitlines() if "Overall exposure level" in line]
    report.append("info live " + (score[0].strip() if score else "no score: " + out[-200:]))

    # Stop: SIGTERM, drain, exit 0 well inside TimeoutStopSec; the sockets stay.
    t0 = time.monotonic()
    rc, out = sh("systemctl", "stop", svc)
    st = show(svc, "Result", "ExecMainCode", "ExecMainStatus", "ActiveState")
    check(rc == 0 and st["Result"] == "success" and st["ExecMainStatus"] == "0",
          "systemctl stop: exit 0 after SIGTERM (%.1fs)" % (time.monotonic() - t0), st)
    for sock in ("popgate-pop3.socket", "popgate-pop3s.socket"):
        check(show(sock, "ActiveState")["ActiveState"] == "active", sock + " keeps listening while the service is down")

    # Re-activation from the POP3S socket.
    hello("127.0.0.1", 995, "pop3s", use_tls=REAL)
    check(wait_active(svc) and show(svc, "MainPID")["MainPID"] not in (pid, "0"), "a new connection starts a new process", show(svc, "MainPID"))
    sh("systemctl", "stop", svc)

    # Nothing the daemon does in these paths may hit the seccomp filter: SystemCallErrorNumber=EPERM
    # turns a filtered call into EPERM, which libdispatch/PopGate would log.
    _, daemon_log = sh("journalctl", "-q", "--no-pager", "-o", "cat", "_SYSTEMD_UNIT=popgate.service")
    eperm = [line for line in daemon_log.splitlines() if "errno=1 " in line + " " or "Operation not permitted" in line]
    check(not eperm, "no EPERM from the sandbox in the daemon's log", eperm[:3])

    _, journal = sh("journalctl", "-q", "--no-pager", "-u", svc, "-n", "40")
    with open("/out/report.txt", "w") as out:
        out.write("\n".join(report) + "\n")
        out.write("---- journalctl -u popgate.service (last 40 lines)\n" + journal + "\n")
    with open("/out/result", "w") as out:
        out.write("FAIL\n" if failed else "PASS\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # still write a report, so the host side can show what happened
        with open("/out/report.txt", "w") as out:
            out.write("\n".join(report) + "\nFAIL probe crashed: %r\n" % (e,))
        with open("/out/result", "w") as out:
            out.write("FAIL\n")
        sys.exit(1)
