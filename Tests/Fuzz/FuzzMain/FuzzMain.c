// SwiftPM links a Linux executable with `--defsym main=<Target>_main` (so tests can link executable
// modules), which replaces libFuzzer's own `main`. These entry points hand over to libFuzzer's driver
// instead. Where SwiftPM does not rename `main`, libFuzzer's `main` runs and these stay unused.
#include "FuzzMain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAIN(target) \
    int target##_main(int argc, char **argv) { return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput); }

FUZZ_MAIN(FuzzSession)
FUZZ_MAIN(FuzzIMAPParser)
FUZZ_MAIN(FuzzDotStuffer)
FUZZ_MAIN(FuzzSASL)
FUZZ_MAIN(FuzzConfig)
FUZZ_MAIN(FuzzProxyHeader)
