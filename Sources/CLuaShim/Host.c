#define _GNU_SOURCE  // struct sigaction and SA_RESETHAND under strict C modes
#include "Internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The allocator counts every byte Lua holds and refuses growth past the limit, except while a
// Swift frame is innermost (see vmlab_host.swift_on_top). Shrinking never fails: Lua relies on it.
static void *vmlab_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  vmlab_host *host = (vmlab_host *)ud;
  size_t old = ptr != NULL ? osize : 0;  // with ptr == NULL, osize encodes the object's type
  if (nsize == 0) {
    free(ptr);
    host->memory_used -= old;
    return NULL;
  }
  if (nsize > old && host->memory_limit != 0 && !host->swift_on_top &&
      host->memory_used - old + nsize > host->memory_limit) {
    host->memory_limit_hit = 1;
    return NULL;
  }
  void *block = realloc(ptr, nsize);
  if (block != NULL) {
    host->memory_used = host->memory_used - old + nsize;
  }
  return block;
}

static int vmlab_panic(lua_State *L) {
  const char *message = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error object is not a string";
  fprintf(stderr, "vmlab: unprotected Lua error: %s\n", message);
  fflush(stderr);
  abort();
}

// Warnings behave as in the standalone interpreter: off until "@on", "@off" turns them off again.
static void vmlab_warn(void *ud, const char *message, int tocont) {
  vmlab_host *host = (vmlab_host *)ud;
  if (!host->warning_continues && !tocont && message[0] == '@') {
    if (strcmp(message, "@on") == 0) {
      host->warnings_on = 1;
    } else if (strcmp(message, "@off") == 0) {
      host->warnings_on = 0;
    }
    return;
  }
  if (host->warnings_on) {
    if (!host->warning_continues) {
      fputs("Lua warning: ", stderr);
    }
    fputs(message, stderr);
    if (!tocont) {
      fputs("\n", stderr);
      fflush(stderr);
    }
  }
  host->warning_continues = tocont;
}

lua_State *vmlab_newstate(void) {
  vmlab_host *host = (vmlab_host *)calloc(1, sizeof(vmlab_host));
  if (host == NULL) {
    return NULL;
  }
  host->swift_on_top = 1;  // Swift is the caller until the first protected call
  lua_State *L = lua_newstate(vmlab_alloc, host);
  if (L == NULL) {
    free(host);
    return NULL;
  }
  *(vmlab_host **)lua_getextraspace(L) = host;
  host->main_thread = L;
  lua_atpanic(L, vmlab_panic);
  lua_setwarnf(L, vmlab_warn, host);
  return L;
}

void vmlab_close(lua_State *L) {
  vmlab_host *host = vmlab_host_of(L);
  host->owner = NULL;
  host->memory_limit = 0;  // finalizers run during close must not fail for lack of budget
  host->instruction_budget = 0;
  lua_close(L);
  free(host);
}

void vmlab_set_memory_limit(lua_State *L, size_t limit) { vmlab_host_of(L)->memory_limit = limit; }

// The count hook runs between VM instructions, where raising is safe: the error unwinds to the
// nearest protected call. luaL_where(L, 0) names the running Lua function's line.
//
// It is installed for two reasons only: the instruction budget (every hook_step instructions, for
// the whole run) and an interrupt request (every instruction, from the moment it is made). Without
// either, no hook is set and Lua runs at full speed.
//
// A script could catch the error with pcall and carry on, so once the budget is spent (or an
// interrupt requested) the hook fires at every instruction of this thread: each catching level
// then fails at its next instruction, and the error reaches the caller from Swift.
static void vmlab_count_hook(lua_State *L, lua_Debug *ar);

// Puts the hook back to what the budget needs on this thread: after an interrupt was spent, a
// thread still carries the every-instruction hook the request set.
static void vmlab_restore_hook(lua_State *L, vmlab_host *host) {
  if (host->instruction_budget != 0) {
    lua_sethook(L, vmlab_count_hook, LUA_MASKCOUNT, host->hook_step);
  } else {
    lua_sethook(L, NULL, 0, 0);
  }
  // A request that arrived while the hook was being changed must not be lost with it.
  if (host->interrupt_requested) {
    lua_sethook(L, vmlab_count_hook, LUA_MASKCOUNT, 1);
  }
}

static void vmlab_count_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  vmlab_host *host = vmlab_host_of(L);
  int step = lua_gethookcount(L);
  host->instructions += step;
  if (host->interrupt_requested) {
    luaL_where(L, 0);
    lua_pushliteral(L, "interrupted");
    lua_concat(L, 2);
    lua_error(L);
  }
  if (host->instruction_budget != 0 && host->instructions > host->instruction_budget) {
    lua_sethook(L, vmlab_count_hook, LUA_MASKCOUNT, 1);
    luaL_where(L, 0);
    lua_pushfstring(L, "instruction budget of %I exceeded", (lua_Integer)host->instruction_budget);
    lua_concat(L, 2);
    lua_error(L);
  }
  if (step != host->hook_step || host->instruction_budget == 0) {
    vmlab_restore_hook(L, host);  // an interrupt that was spent, or a budget that was lifted
  }
}

// The budget's hook; a coarse step keeps it cheap and the budget holds to within one step.
static void vmlab_install_count_hook(lua_State *L) {
  vmlab_host *host = vmlab_host_of(L);
  long long budget = host->instruction_budget;
  host->hook_step = budget != 0 && budget < 1000 ? (int)budget : 1000;
  vmlab_restore_hook(L, host);
}

void vmlab_reset_instruction_count(lua_State *L) {
  vmlab_host *host = vmlab_host_of(L);
  host->instructions = 0;
  vmlab_restore_hook(L, host);
}

void vmlab_set_instruction_budget(lua_State *L, long long budget) {
  vmlab_host_of(L)->instruction_budget = budget > 0 ? budget : 0;
  vmlab_install_count_hook(L);
}

// What lua.c's signal handler does, for every thread that may be running: lua_sethook only stores
// a few fields and marks the thread's call frames, so it is safe from a signal handler or another
// thread. The hook then raises at the next instruction.
void vmlab_interrupt_thread(lua_State *thread) { lua_sethook(thread, vmlab_count_hook, LUA_MASKCOUNT, 1); }

static void vmlab_arm_interrupt(vmlab_host *host) {
  host->interrupt_requested = 1;
  vmlab_interrupt_thread(host->main_thread);
  int depth = host->resumed_depth;
  for (int index = 0; index < depth && index < VMLAB_MAX_RESUMED; index++) {
    lua_State *thread = host->resumed[index];
    if (thread != NULL) {
      vmlab_interrupt_thread(thread);
    }
  }
}

void vmlab_request_interrupt(lua_State *L) { vmlab_arm_interrupt(vmlab_host_of(L)); }

static vmlab_host *volatile vmlab_sigint_target;
static struct sigaction vmlab_sigint_previous;

static void vmlab_on_sigint(int signal) {
  (void)signal;
  vmlab_host *host = vmlab_sigint_target;
  if (host != NULL) {
    vmlab_arm_interrupt(host);
  }
}

void vmlab_catch_sigint(lua_State *L) {
  vmlab_host *host = vmlab_host_of(L);
  host->interrupt_requested = 0;
  vmlab_sigint_target = host;
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = vmlab_on_sigint;
  action.sa_flags = SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &vmlab_sigint_previous);
}

void vmlab_release_sigint(void) {
  sigaction(SIGINT, &vmlab_sigint_previous, NULL);
  vmlab_sigint_target = NULL;
}
