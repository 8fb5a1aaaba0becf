// Debian's libedit (libedit-dev): its readline-compatible interface, used by `vmlab repl`.
#include <stdio.h>
#include <editline/readline.h>
