#include "Internal.h"

#include <lualib.h>

// coroutine.resume and coroutine.wrap as lcorolib.c has them, except that the coroutine being
// resumed is recorded in the host while it runs: an interrupt (Ctrl-C) sets its hook on every
// recorded thread, so a loop inside a coroutine stops too. No hook is needed while nobody asks.

static lua_State *vmlab_coroutine_argument(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  luaL_argexpected(L, co, 1, "coroutine");
  return co;
}

// lua_resume never raises, so the record is always taken off again.
static int vmlab_resume_recorded(lua_State *co, lua_State *L, int narg, int *nres) {
  vmlab_host *host = vmlab_host_of(L);
  int depth = host->resumed_depth;
  if (depth < VMLAB_MAX_RESUMED) {
    host->resumed[depth] = co;
  }
  host->resumed_depth = depth + 1;
  // A request made before this coroutine was recorded has armed only the threads recorded then.
  if (host->interrupt_requested) {
    vmlab_interrupt_thread(co);
  }
  int status = lua_resume(co, L, narg, nres);
  host->resumed_depth = depth;
  if (depth < VMLAB_MAX_RESUMED) {
    host->resumed[depth] = NULL;
  }
  return status;
}

// lcorolib.c's auxresume: the results (or the error message) moved to L; -1 flags an error.
static int vmlab_auxresume(lua_State *L, lua_State *co, int narg) {
  int nres;
  if (!lua_checkstack(co, narg)) {
    lua_pushliteral(L, "too many arguments to resume");
    return -1;
  }
  lua_xmove(L, co, narg);
  int status = vmlab_resume_recorded(co, L, narg, &nres);
  if (status == LUA_OK || status == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      lua_pushliteral(L, "too many results to resume");
      return -1;
    }
    lua_xmove(co, L, nres);
    return nres;
  }
  lua_xmove(co, L, 1);
  return -1;
}

static int vmlab_coroutine_resume(lua_State *L) {
  lua_State *co = vmlab_coroutine_argument(L);
  int results = vmlab_auxresume(L, co, lua_gettop(L) - 1);
  if (results < 0) {
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushboolean(L, 1);
  lua_insert(L, -(results + 1));
  return results + 1;
}

static int vmlab_coroutine_wrapped(lua_State *L) {
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  int results = vmlab_auxresume(L, co, lua_gettop(L));
  if (results < 0) {
    int status = lua_status(co);
    if (status != LUA_OK && status != LUA_YIELD) {  // an error in the coroutine: close it
#if LUA_VERSION_RELEASE_NUM >= 50406
      status = lua_closethread(co, L);
#else
      status = lua_resetthread(co);
#endif
      lua_xmove(co, L, 1);
    }
    if (status != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
      luaL_where(L, 1);
      lua_insert(L, -2);
      lua_concat(L, 2);
    }
    return lua_error(L);
  }
  return results;
}

static int vmlab_coroutine_wrap(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_State *co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushcclosure(L, vmlab_coroutine_wrapped, 1);
  return 1;
}

void vmlab_install_coroutine_functions(lua_State *L) {
  if (lua_getglobal(L, LUA_COLIBNAME) == LUA_TTABLE) {
    lua_pushcfunction(L, vmlab_coroutine_resume);
    lua_setfield(L, -2, "resume");
    lua_pushcfunction(L, vmlab_coroutine_wrap);
    lua_setfield(L, -2, "wrap");
  }
  lua_pop(L, 1);
}
