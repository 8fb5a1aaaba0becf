// Debian's libedit (libedit-dev): its readline-compatible interface, used by `vmlab repl`.
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <editline/readline.h>

// Ctrl-C at the REPL's prompt abandons the line, as in shells and `lua`, instead of ending vmlab.
// While the prompt waits, SIGINT sets a flag; the read it interrupts fails (no SA_RESTART), readline
// returns NULL, and the flag tells that apart from Ctrl-D. libedit's own handler (it restores the
// terminal) runs first and passes the signal on to this one.
//
// A signal that lands while libedit is not inside read(2) (echoing the last key, say) would leave
// the next read blocked with the flag set; so the handler also starts a 20 ms repeating timer whose
// SIGALRM interrupts that read. The reader stops the timer as soon as readline returns.
//
// State lives in function-local statics (a system library module has no C file for globals), so
// only one Swift file may call these functions: LineReader.swift.

static inline volatile sig_atomic_t *vmlab_prompt_flag(void) {
  static volatile sig_atomic_t interrupted;
  return &interrupted;
}

static inline struct sigaction *vmlab_prompt_previous(int which) {
  static struct sigaction previous[2];
  return &previous[which];
}

static inline void vmlab_prompt_set_kick_timer(int on) {
  struct itimerval timer;
  memset(&timer, 0, sizeof timer);
  if (on) {
    timer.it_value.tv_usec = 20000;
    timer.it_interval.tv_usec = 20000;
  }
  setitimer(ITIMER_REAL, &timer, NULL);
}

static void vmlab_prompt_on_sigint(int signal) {
  (void)signal;
  *vmlab_prompt_flag() = 1;
  vmlab_prompt_set_kick_timer(1);
}

static void vmlab_prompt_on_sigalrm(int signal) { (void)signal; }

/// From now until vmlab_prompt_release_sigint, SIGINT sets the flag and SIGALRM only interrupts.
/// libedit keeps its own handlers (they restore the terminal, follow resizes, Ctrl-Z and fg): while
/// it reads a line they run first and pass SIGINT on to this one.
static inline void vmlab_prompt_catch_sigint(void) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  sigemptyset(&action.sa_mask);
  action.sa_handler = vmlab_prompt_on_sigint;
  sigaction(SIGINT, &action, vmlab_prompt_previous(0));
  action.sa_handler = vmlab_prompt_on_sigalrm;
  sigaction(SIGALRM, &action, vmlab_prompt_previous(1));
}

static inline void vmlab_prompt_release_sigint(void) {
  vmlab_prompt_set_kick_timer(0);
  sigaction(SIGINT, vmlab_prompt_previous(0), NULL);
  sigaction(SIGALRM, vmlab_prompt_previous(1), NULL);
}

/// Whether SIGINT arrived since the last call; clears the flag and stops the timer.
static inline int vmlab_prompt_take_interrupt(void) {
  vmlab_prompt_set_kick_timer(0);
  int interrupted = *vmlab_prompt_flag();
  *vmlab_prompt_flag() = 0;
  return interrupted;
}
