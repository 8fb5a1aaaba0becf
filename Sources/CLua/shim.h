// Debian installs the Lua 5.4 headers under /usr/include/lua5.4 (pkg-config lua5.4 adds it).
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
