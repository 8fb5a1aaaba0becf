#ifndef VMLAB_CLUASHIM_H
#define VMLAB_CLUASHIM_H

#include <lua.h>

/// A Swift function that Lua calls through the trampoline. It never raises: it returns the number
/// of results it pushed, or -1 after pushing an error value, and the C trampoline raises it once the
/// Swift frame has returned (DESIGN.md rule 5: no longjmp across Swift frames).
typedef int (*vmlab_swift_function)(lua_State *L);

/// Pushes a C closure whose first upvalue is `function`; `upvalues` more values from the stack follow it
/// (they are popped, as with lua_pushcclosure). Inside the Swift function, upvalue i is at
/// lua_upvalueindex(i + 1).
void vmlab_push_swift_function(lua_State *L, vmlab_swift_function function, int upvalues);

/// The C macros Swift cannot import, as functions.
int vmlab_upvalueindex(int i);
int vmlab_registryindex(void);
const char *vmlab_tostring(lua_State *L, int index, size_t *length);
int vmlab_pop(lua_State *L, int n);

#endif
