/*
 * PopGate's window onto libsystemd: socket activation, sd_notify and the
 * native journal protocol.
 *
 * SD_JOURNAL_SUPPRESS_LOCATION must come before <systemd/sd-journal.h>:
 * without it sd_journal_sendv is a macro that prepends CODE_FILE/CODE_LINE/
 * CODE_FUNC of *this header*, and Swift cannot call the macro anyway. With it
 * we get the plain function and send the caller's own CODE_* fields.
 */
#ifndef POPGATE_CSYSTEMD_SHIM_H
#define POPGATE_CSYSTEMD_SHIM_H

#ifndef SD_JOURNAL_SUPPRESS_LOCATION
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#endif

#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#endif /* POPGATE_CSYSTEMD_SHIM_H */
