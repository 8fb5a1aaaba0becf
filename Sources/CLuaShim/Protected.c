#include "CLuaShim.h"

// Registry slots where the message handler leaves what it learnt about the error, so that the
// error value itself travels unchanged (a table stays a table for the Lua code that catches it).
static const char message_key = 'm';
static const char traceback_key = 't';

// Runs inside the failed call, before the stack unwinds: the only moment a traceback exists.
static int vmlab_message_handler(lua_State *L) {
  if (lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER) {
    lua_pushvalue(L, 1);
    lua_tostring(L, -1);  // converts the copy, not the error value
  } else if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
    // message produced by __tostring
  } else {
    lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  lua_rawsetp(L, LUA_REGISTRYINDEX, &message_key);
  luaL_traceback(L, L, NULL, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &traceback_key);
  lua_settop(L, 1);
  return 1;
}

// Turns the error value on top into the triple value, message, traceback.
static void vmlab_push_error_details(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &message_key) != LUA_TSTRING) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      lua_pushvalue(L, -1);
    } else {
      lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, -1));
    }
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &traceback_key);
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &message_key);
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &traceback_key);
}

int vmlab_pcall(lua_State *L, int nargs, int nresults) {
  vmlab_host *host = vmlab_host_of(L);
  int handler = lua_gettop(L) - nargs;
  lua_pushcfunction(L, vmlab_message_handler);  // a light C function: no allocation
  lua_insert(L, handler);
  if (host->protected_depth == 0) {
    // Limits apply per outermost call from Swift (a script run, a callback from the REPL).
    vmlab_reset_instruction_count(L);
    host->memory_limit_hit = 0;
  }
  int saved = host->swift_on_top;
  host->protected_depth += 1;
  host->swift_on_top = 0;
  int status = lua_pcallk(L, nargs, nresults, handler, 0, NULL);
  host->swift_on_top = saved;
  host->protected_depth -= 1;
  lua_remove(L, handler);
  if (status != LUA_OK) {
    vmlab_push_error_details(L);
  }
  return status;
}

int vmlab_load(lua_State *L, const char *buffer, size_t size, const char *chunkname, const char *mode) {
  vmlab_host *host = vmlab_host_of(L);
  // lua_load parses in protected mode, so the memory limit can apply while it runs.
  int saved = host->swift_on_top;
  if (host->protected_depth == 0) {
    host->memory_limit_hit = 0;
  }
  host->swift_on_top = 0;
  int status = luaL_loadbufferx(L, buffer, size, chunkname, mode);
  host->swift_on_top = saved;
  if (status != LUA_OK) {
    vmlab_push_error_details(L);
  }
  return status;
}

// luaL_loadfilex builds messages with lua_pushfstring outside any protection: run it protected.
static int vmlab_loadfile_protected(lua_State *L) {
  const char *path = (const char *)lua_touserdata(L, 1);
  const char *mode = (const char *)lua_touserdata(L, 2);
  int status = luaL_loadfilex(L, path, mode);
  lua_pushinteger(L, status);
  return 2;
}

int vmlab_loadfile(lua_State *L, const char *path, const char *mode) {
  lua_pushcfunction(L, vmlab_loadfile_protected);
  lua_pushlightuserdata(L, (void *)path);
  lua_pushlightuserdata(L, (void *)mode);
  int status = vmlab_pcall(L, 2, 2);
  if (status != LUA_OK) {
    return status;
  }
  status = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (status != LUA_OK) {
    vmlab_push_error_details(L);
  }
  return status;
}

static int vmlab_gettable_protected(lua_State *L) {
  lua_gettable(L, 1);
  return 1;
}

int vmlab_gettable(lua_State *L, int index) {
  index = lua_absindex(L, index);
  lua_pushcfunction(L, vmlab_gettable_protected);
  lua_pushvalue(L, index);
  lua_rotate(L, -3, -1);  // key, function, table -> function, table, key
  return vmlab_pcall(L, 2, 1);
}

static int vmlab_settable_protected(lua_State *L) {
  lua_settable(L, 1);
  return 0;
}

int vmlab_settable(lua_State *L, int index) {
  index = lua_absindex(L, index);
  lua_pushcfunction(L, vmlab_settable_protected);
  lua_pushvalue(L, index);
  lua_rotate(L, -4, 2);  // key, value, function, table -> function, table, key, value
  return vmlab_pcall(L, 3, 0);
}

static int vmlab_tolstring_protected(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

int vmlab_tolstring(lua_State *L, int index) {
  index = lua_absindex(L, index);
  lua_pushcfunction(L, vmlab_tolstring_protected);
  lua_pushvalue(L, index);
  return vmlab_pcall(L, 1, 1);
}
