#ifndef VMLAB_CLUASHIM_INTERNAL_H
#define VMLAB_CLUASHIM_INTERNAL_H

#include "CLuaShim.h"

// Between the shim's own files; Swift does not see these.

/// Sets the every-instruction hook that raises "interrupted" on `thread` (Host.c).
void vmlab_interrupt_thread(lua_State *thread);

/// Replaces coroutine.resume and coroutine.wrap with versions that record the running coroutine
/// (Coroutines.c); the coroutine library must be open.
void vmlab_install_coroutine_functions(lua_State *L);

#endif
