#ifndef VMLAB_CLUASHIM_H
#define VMLAB_CLUASHIM_H

#include <signal.h>
#include <stddef.h>
#include <lua.h>
#include <lauxlib.h>

// ---------------------------------------------------------------------------------------------
// Per-state bookkeeping shared by C and Swift. One vmlab_host is allocated per lua_State; it is
// the allocator's userdata and its address sits in the state's extra space (copied into every
// coroutine), so both the allocator and Swift code reach it from any thread of the state.
// ---------------------------------------------------------------------------------------------

/// Coroutines resumed inside one another: Lua stops at LUAI_MAXCCALLS (200) nested C calls first.
#define VMLAB_MAX_RESUMED 256

typedef struct vmlab_host {
  /// The Swift LuaState (unretained). NULL once the state starts closing: finalizers that run
  /// during lua_close must not reach a Swift object that is being deinitialised.
  void *owner;
  /// Bytes currently allocated by Lua, and the refusal threshold (0 = unlimited).
  size_t memory_used;
  size_t memory_limit;
  /// Non-zero while a Swift frame is the innermost frame with no protected call above it. A
  /// refused allocation raises, and a raise then would longjmp across Swift (DESIGN.md rule 5),
  /// so while this is set the allocator lets allocations through and the trampoline checks the
  /// limit once the Swift frame has returned.
  int swift_on_top;
  /// Set when the allocator refused an allocation (or the trampoline found the limit exceeded)
  /// since the last outermost protected call started.
  int memory_limit_hit;
  /// Instructions counted by the count hook since the outermost protected call started, and the
  /// budget (0 = unlimited). hook_step is the hook's count interval.
  long long instructions;
  long long instruction_budget;
  int hook_step;
  /// Set from any thread or a signal handler to stop the running Lua code; cleared when a run that
  /// catches SIGINT starts and once the error reaches Swift. Whoever sets it also installs a count
  /// hook on the running threads (as lua.c does from its signal handler), so no hook slows Lua
  /// down while nobody asks for an interrupt.
  volatile sig_atomic_t interrupt_requested;
  /// The main thread, and the coroutines being resumed (innermost last): the threads an interrupt
  /// must reach. Maintained by vmlab's coroutine.resume and coroutine.wrap.
  lua_State *main_thread;
  lua_State *volatile resumed[VMLAB_MAX_RESUMED];
  volatile sig_atomic_t resumed_depth;
  /// Nesting depth of vmlab_pcall: limits are reset when the outermost one starts.
  int protected_depth;
  /// Warning state (lua_setwarnf), as the standalone interpreter keeps it.
  int warnings_on;
  int warning_continues;
} vmlab_host;

/// Creates a state whose allocator counts bytes, with a panic function and warnings off.
/// Returns NULL when memory is exhausted. The standard libraries are not opened.
lua_State *vmlab_newstate(void);

/// Closes the state and frees its vmlab_host.
void vmlab_close(lua_State *L);

static inline vmlab_host *vmlab_host_of(lua_State *L) { return *(vmlab_host **)lua_getextraspace(L); }

/// Sets the memory limit in bytes (0 = none).
void vmlab_set_memory_limit(lua_State *L, size_t limit);

/// Sets the instruction budget (0 = none); installs or removes the count hook.
void vmlab_set_instruction_budget(lua_State *L, long long budget);

/// Asks the running code to stop with an "interrupted" error at its next instruction, in whichever
/// coroutine it runs. Safe from any thread and from a signal handler.
void vmlab_request_interrupt(lua_State *L);

/// Until vmlab_release_sigint: SIGINT (Ctrl-C) requests an interrupt of L instead of ending the
/// process. The handler is reset by the first signal, so a second Ctrl-C before the code stops ends
/// the process as usual (as the standalone lua does). Clears any earlier request.
void vmlab_catch_sigint(lua_State *L);

/// Restores the SIGINT disposition vmlab_catch_sigint replaced.
void vmlab_release_sigint(void);

/// Starts a new count for the instruction budget (called when an outermost protected call starts).
void vmlab_reset_instruction_count(lua_State *L);

/// Opens the standard libraries (protected). Sandboxed: base (with text-only load, loadfile and
/// dofile), coroutine, table, string, math, utf8 and a package library that loads only Lua
/// source modules; no io, os, debug or C module loading. Either way coroutine.resume and
/// coroutine.wrap are vmlab's, which record the coroutine they run so that an interrupt reaches
/// it. On failure the error triple is pushed (see vmlab_pcall).
int vmlab_open_libraries(lua_State *L, int sandboxed);

// ---------------------------------------------------------------------------------------------
// Swift functions as Lua functions.
// ---------------------------------------------------------------------------------------------

/// A Swift function that Lua calls through the trampoline. It never raises: it returns the number
/// of results it pushed, or -1 after pushing an error value, and the C trampoline raises it once the
/// Swift frame has returned (DESIGN.md rule 5: no longjmp across Swift frames).
typedef int (*vmlab_swift_function)(lua_State *L);

/// Pushes a C closure whose first upvalue is `function`; `upvalues` more values from the stack follow it
/// (they are popped, as with lua_pushcclosure). Inside the Swift function, upvalue i is at
/// lua_upvalueindex(i + 1).
void vmlab_push_swift_function(lua_State *L, vmlab_swift_function function, int upvalues);

/// Pushes `message` prefixed with the caller's position ("file:line: "), as luaL_error does.
void vmlab_push_located_message(lua_State *L, const char *message, size_t length);

// ---------------------------------------------------------------------------------------------
// Protected entry points: the only ways Swift runs Lua code.
// ---------------------------------------------------------------------------------------------

/// lua_pcallk with a message handler. On success the results replace the function and its
/// arguments. On failure three values replace them: the error value itself, its message as a
/// string (from __tostring for non-string values) and a traceback string (nil when none was
/// taken, e.g. for memory errors).
int vmlab_pcall(lua_State *L, int nargs, int nresults);

/// Loads a chunk from memory; `mode` is "t", "b" or "bt". On failure pushes the error triple.
int vmlab_load(lua_State *L, const char *buffer, size_t size, const char *chunkname, const char *mode);

/// Loads a file (chunk name "@path"); on failure pushes the error triple.
int vmlab_loadfile(lua_State *L, const char *path, const char *mode);

/// t[k] with metamethods, protected: the table is at `index`, the key on top; on success the key
/// is replaced by the value, on failure by the error triple.
int vmlab_gettable(lua_State *L, int index);

/// t[k] = v with metamethods, protected: table at `index`, key and value on top (popped); on
/// failure the error triple is pushed.
int vmlab_settable(lua_State *L, int index);

/// tostring(v) (__tostring and __name honoured), protected: the value at `index` stays; on success
/// the string is pushed, on failure the error triple.
int vmlab_tolstring(lua_State *L, int index);

// ---------------------------------------------------------------------------------------------
// The C macros Swift cannot import, as inline functions.
// ---------------------------------------------------------------------------------------------

static inline int vmlab_upvalueindex(int i) { return lua_upvalueindex(i); }
static inline int vmlab_registryindex(void) { return LUA_REGISTRYINDEX; }
/// lua_tolstring: converts a number in place (allocating), so Swift calls it on strings, or on
/// numbers only where the allocator cannot refuse (a Swift frame is innermost).
static inline const char *vmlab_tostring(lua_State *L, int index, size_t *length) {
  return lua_tolstring(L, index, length);
}
static inline int vmlab_pop(lua_State *L, int n) {
  lua_pop(L, n);
  return 0;
}
static inline void vmlab_newtable(lua_State *L) { lua_createtable(L, 0, 0); }
static inline int vmlab_multret(void) { return LUA_MULTRET; }
static inline int vmlab_errfile(void) { return LUA_ERRFILE; }
static inline void vmlab_collect_garbage(lua_State *L) { lua_gc(L, LUA_GCCOLLECT); }

#endif
