//! `Command`: runs a program (an argv, or a shell script when asked) as one attempt, streams its
//! output into the step's logs, and kills its whole process group when the attempt is dropped.
//!
//! # Exit statuses
//!
//! | the program | the attempt |
//! |---|---|
//! | exits with 0 | succeeds |
//! | exits with a code listed in [`Command::transient_exit_codes`] | fails, transient (retried) |
//! | exits with any other code | fails, permanent |
//! | is killed by `SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`, `SIGABRT` or `SIGSYS` (it crashed) | fails, permanent |
//! | is killed by any other signal (the OOM killer, an operator, a node under pressure) | fails, transient |
//! | is a shell (a [`shell`](Command::shell) script, or `sh`, `bash`, `dash`, `ash`, `ksh`, `mksh`, `zsh`) and exits with `128+n` for a signal `n` | as if killed by signal `n` |
//! | cannot be started: not found, not executable, not a program (`ENOEXEC`), a symlink loop | fails, permanent |
//! | cannot be started for lack of resources (`ENOMEM`, `EAGAIN`, `EMFILE`, `ENFILE`) or a program still being written (`ETXTBSY`) | fails, transient |
//!
//! A shell reports a child killed by a signal as exit status `128+n` (137 for `SIGKILL`), so an
//! OOM kill inside `sh -c` is transient like a direct one. A code listed in
//! [`Command::transient_exit_codes`] is transient whatever it means.
//!
//! # The error message
//!
//! A failure's message names the program, the status and the most informative line of its
//! stderr: the last line that looks like an error (it contains `error`, `fatal`, `fail`,
//! `denied`, `panic`, `refused`, `cannot`, `unable`, `no such` or `not found`, in any case, or
//! starts with `E:`), else the last line that is not only punctuation (a `^` under a SQL
//! error says nothing). So `psql` failing reads `psql: exited with code 3: psql:001.sql:3:
//! ERROR:  syntax error at or near "CREAT"`, not `... code 3: ^`. At a failure the last ten
//! stderr lines are also logged in one event (`warn`, field `stderr_tail`), masked like all
//! output.
//!
//! # Process groups, cancellation and zombies
//!
//! Each run starts the program in a new process group. When the executor drops the attempt
//! (cancellation, an attempt timeout, the step's or the plan's deadline), the whole group gets
//! `SIGTERM` at once, in the drop itself, so a process that exits right after (SIGTERM to the
//! init binary) still stops its children; a background thread then waits up to the grace period
//! ([`Command::kill_grace`], default 5 s) and sends `SIGKILL` to whatever is left, and reaps the
//! program. When the program exits by itself, processes it left behind in its group are stopped
//! the same way: a command's processes do not outlive its step.
//! `Plan::run_main_then_exec` (init-core's `run-main` feature) waits for these
//! background stops (SIGKILL after the grace, reaping) to finish before it execs the program.
//!
//! No zombies: the program itself is always reaped (by the runtime, or by the kill thread).
//! Processes of its group that were orphaned and handed to us (we are PID 1 in the container, or
//! a subreaper) are reaped by a `waitpid` on the group, which never touches children that other
//! code started. A process that leaves the group (`setsid`, a daemon) is out of reach; in a
//! container it dies with PID 1, but if your tool daemonizes, run the init binary under an init
//! such as `tini`. If the init binary itself exits (`run_main`) before the grace period ends,
//! the group got `SIGTERM` but not `SIGKILL`; as PID 1 of a container, its exit makes the kernel
//! kill the rest. Nobody reads the program's output after that: a program that must clean up on
//! `SIGTERM` (release a lock) should ignore `SIGPIPE`, as `examples/migrations/migrate.sh` does.
//!
//! While the group stops, its output is still read and logged, so a program that shuts down
//! cleanly (rolls back, releases a lock, says so) is not killed by `SIGPIPE` on the way. After
//! the program exits by itself, its output is awaited for at most half a second more: a process
//! it left in the background may keep the pipes open.

mod builder;
mod exit;
mod output;
mod run;

pub use builder::Command;
