"""Real-component test harness for PopGate: a throw-away Dovecot, a test CA,
a PopGate process manager, a scripted fake IMAP backend, a raw POP3 client
and the message corpus. Used by the pytest suite and by demo.py."""
