#ifndef VMLAB_FUZZER_DRIVER_H
#define VMLAB_FUZZER_DRIVER_H
#include <stddef.h>
#include <stdint.h>

// libFuzzer's entry point for programs that have their own main (LLVM 11 and later). SwiftPM links an
// executable target with its own main, so libFuzzer's main is never used: each fuzzer's @main calls this.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
