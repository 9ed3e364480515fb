#pragma once
// Whether rank 0's progress line would reach a person. Under mpirun a rank's stderr is a pipe to
// the launcher (and Open MPI gives its stdout a pseudo-terminal even in a batch job, so isatty(1)
// says nothing); the launcher writes what it relays to its own stderr. So the question is what the
// launcher's stderr is: rank 0 walks up its ancestors to the launcher and looks there. The
// decision is a pure function of what it found, tested on its own.
#include <string>
#include <vector>

namespace mil::orch {

/// One process on the way from a rank up to its launcher.
struct ProcessView {
  int pid = 0;
  std::string name;           ///< /proc/<pid>/comm, e.g. "mpirun", "prted", "bash".
  std::string stderr_target;  ///< readlink of /proc/<pid>/fd/2: "/dev/pts/3", "pipe:[81]", a
                              ///< file path, "/dev/null"; "" when it cannot be read.
};

/// "/dev/pts/N", "/dev/ttyN" and "/dev/console" are terminals; pipes, sockets, files are not.
bool is_terminal_path(const std::string& target);

/// True for the programs that launch ranks and relay their output: mpirun, mpiexec, orterun,
/// prterun (and their ".openmpi"/".mpich"/".hydra" variants) and srun.
bool is_launcher_name(const std::string& name);

/// The decision: a terminal on our own stderr answers yes; otherwise, only under an MPI launcher
/// (`under_launcher`: the launcher's environment variables are set), walk `ancestors` (parent
/// first) past the processes that relay output through a pipe or socket (daemons, proxies, a
/// wrapper shell) to the first launcher, and answer whether its stderr is a terminal. Output that
/// goes to a file, /dev/null or an unreadable place on the way, or no launcher among the
/// ancestors, answers no.
bool progress_reaches_terminal(bool own_stderr_is_terminal, bool under_launcher,
                               const std::vector<ProcessView>& ancestors);

/// This process's ancestors from /proc (parent first, at most `max_depth`, stopping at pid 1).
std::vector<ProcessView> ancestors_from_proc(int max_depth = 8);

/// progress_reaches_terminal for this process now: isatty(2), the launcher variables of Open MPI,
/// PMIx, MPICH/Hydra and Slurm, and /proc.
bool stderr_reaches_a_terminal();

}  // namespace mil::orch
