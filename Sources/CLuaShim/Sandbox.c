#include "Internal.h"

#include <lualib.h>

// Sandboxed scripts may load source text but never binary chunks: malformed bytecode can crash
// the interpreter. These wrappers force the mode argument of the originals to "t".

static int vmlab_force_text_mode(lua_State *L, int mode_argument) {
  if (lua_gettop(L) < mode_argument) {
    lua_settop(L, mode_argument);  // arguments after the mode stay absent (load tells nil from none)
  }
  lua_pushliteral(L, "t");
  lua_replace(L, mode_argument);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

static int vmlab_text_load(lua_State *L) { return vmlab_force_text_mode(L, 3); }
static int vmlab_text_loadfile(lua_State *L) { return vmlab_force_text_mode(L, 2); }

static int vmlab_dofile_continuation(lua_State *L, int status, lua_KContext context) {
  (void)status;
  (void)context;
  return lua_gettop(L) - 1;
}

static int vmlab_text_dofile(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_settop(L, 1);
  if (luaL_loadfilex(L, path, "t") != LUA_OK) {
    return lua_error(L);
  }
  lua_callk(L, 0, LUA_MULTRET, 0, vmlab_dofile_continuation);
  return vmlab_dofile_continuation(L, LUA_OK, 0);
}

// package.searchers[2] for the sandbox: Lua source files found on package.path, loaded as text.
static int vmlab_text_searcher(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  lua_getfield(L, lua_upvalueindex(1), "searchpath");
  lua_pushstring(L, name);
  if (lua_getfield(L, lua_upvalueindex(1), "path") != LUA_TSTRING) {
    return luaL_error(L, "'package.path' must be a string");
  }
  lua_call(L, 2, 2);
  if (lua_isnil(L, -2)) {
    return 1;  // the list of files tried; require adds the separators
  }
  lua_pop(L, 1);
  const char *path = lua_tostring(L, -1);
  if (luaL_loadfilex(L, path, "t") != LUA_OK) {
    return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, path, lua_tostring(L, -1));
  }
  lua_insert(L, -2);  // loader, then its second argument: the file name
  return 2;
}

static void vmlab_wrap_global(lua_State *L, const char *name, lua_CFunction wrapper) {
  lua_getglobal(L, name);
  lua_pushcclosure(L, wrapper, 1);
  lua_setglobal(L, name);
}

static int vmlab_open_sandboxed(lua_State *L) {
  static const luaL_Reg libraries[] = {
    {LUA_GNAME, luaopen_base},        {LUA_LOADLIBNAME, luaopen_package}, {LUA_COLIBNAME, luaopen_coroutine},
    {LUA_TABLIBNAME, luaopen_table},  {LUA_STRLIBNAME, luaopen_string},   {LUA_MATHLIBNAME, luaopen_math},
    {LUA_UTF8LIBNAME, luaopen_utf8},  {NULL, NULL},
  };
  for (const luaL_Reg *library = libraries; library->func != NULL; library++) {
    luaL_requiref(L, library->name, library->func, 1);
    lua_pop(L, 1);
  }
  vmlab_wrap_global(L, "load", vmlab_text_load);
  vmlab_wrap_global(L, "loadfile", vmlab_text_loadfile);
  lua_pushcfunction(L, vmlab_text_dofile);
  lua_setglobal(L, "dofile");

  // package: keep preload and Lua source modules; drop loadlib and the C searchers.
  lua_getglobal(L, LUA_LOADLIBNAME);
  int package = lua_gettop(L);
  lua_pushnil(L);
  lua_setfield(L, package, "loadlib");
  lua_pushliteral(L, "");
  lua_setfield(L, package, "cpath");
  lua_getfield(L, package, "searchers");
  lua_createtable(L, 2, 0);
  lua_rawgeti(L, -2, 1);  // the preload searcher
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, package);
  lua_pushcclosure(L, vmlab_text_searcher, 1);
  lua_rawseti(L, -2, 2);
  lua_setfield(L, package, "searchers");
  lua_settop(L, 0);
  vmlab_install_coroutine_functions(L);
  return 0;
}

static int vmlab_open_all(lua_State *L) {
  luaL_openlibs(L);
  vmlab_install_coroutine_functions(L);
  return 0;
}

int vmlab_open_libraries(lua_State *L, int sandboxed) {
  lua_pushcfunction(L, sandboxed ? vmlab_open_sandboxed : vmlab_open_all);
  return vmlab_pcall(L, 0, 0);
}
