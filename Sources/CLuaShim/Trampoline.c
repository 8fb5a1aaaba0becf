#include "CLuaShim.h"

// Lua sees this C function; the Swift function it calls returns before any lua_error runs.
static int vmlab_trampoline(lua_State *L) {
  vmlab_swift_function function = (vmlab_swift_function)lua_touserdata(L, lua_upvalueindex(1));
  vmlab_host *host = vmlab_host_of(L);
  // While Swift runs, a refused allocation would raise across its frame: let allocations
  // through and check the limit below, once the Swift frame is gone.
  int saved = host->swift_on_top;
  host->swift_on_top = 1;
  int results = function(L);
  host->swift_on_top = saved;
  if (results < 0) {
    return lua_error(L);
  }
  if (host->memory_limit != 0 && host->memory_used > host->memory_limit && !saved) {
    // Swift went past the limit; garbage may explain it, so collect before refusing.
    lua_gc(L, LUA_GCCOLLECT);
    if (host->memory_used > host->memory_limit) {
      host->memory_limit_hit = 1;
      return luaL_error(L, "memory limit of %I bytes exceeded", (lua_Integer)host->memory_limit);
    }
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

void vmlab_push_located_message(lua_State *L, const char *message, size_t length) {
  luaL_where(L, 1);
  lua_pushlstring(L, message, length);
  lua_concat(L, 2);
}
