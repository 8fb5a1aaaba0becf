#include "CLuaShim.h"

#include <lauxlib.h>

// Lua sees this C function; the Swift function it calls returns before any lua_error runs.
static int vmlab_trampoline(lua_State *L) {
  vmlab_swift_function function = (vmlab_swift_function)lua_touserdata(L, lua_upvalueindex(1));
  int results = function(L);
  if (results < 0) {
    return lua_error(L);
  }
  return results;
}

void vmlab_push_swift_function(lua_State *L, vmlab_swift_function function, int upvalues) {
  lua_pushlightuserdata(L, (void *)function);
  if (upvalues > 0) {
    lua_insert(L, -(upvalues + 1));
  }
  lua_pushcclosure(L, vmlab_trampoline, upvalues + 1);
}

int vmlab_upvalueindex(int i) { return lua_upvalueindex(i); }
int vmlab_registryindex(void) { return LUA_REGISTRYINDEX; }
const char *vmlab_tostring(lua_State *L, int index, size_t *length) { return lua_tolstring(L, index, length); }
int vmlab_pop(lua_State *L, int n) {
  lua_pop(L, n);
  return 0;
}
