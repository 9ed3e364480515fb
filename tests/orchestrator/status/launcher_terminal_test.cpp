// When rank 0 draws its progress line: the launcher's stderr decides, found by walking up from the
// rank past the processes that only relay output.
#include "orchestrator/status/launcher_terminal.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace mil::orch {
namespace {

// What /proc showed for rank 0 of `mpirun -n 3 mhim sweep ...` typed in a terminal (Open MPI
// 4.1: the rank's stderr is a pipe to mpirun, whose stderr is the terminal).
const std::vector<ProcessView> kInteractive = {{4101, "mpirun", "/dev/pts/0"},
                                               {4000, "bash", "/dev/pts/0"}};

TEST(LauncherTerminal, ATerminalOnOurOwnStderrIsEnough) {
  EXPECT_TRUE(progress_reaches_terminal(true, false, {}));
  EXPECT_TRUE(progress_reaches_terminal(true, true, {}));
}

TEST(LauncherTerminal, MpirunTypedInATerminalShowsTheLine) {
  EXPECT_TRUE(progress_reaches_terminal(false, true, kInteractive));
}

TEST(LauncherTerminal, OutputCapturedAtTheLauncherShowsNoLine) {
  // mpirun ... 2> sweep.log, nohup mpirun ..., a batch job, mpirun ... 2>&1 | tee log
  for (const char* target : {"/home/u/sweep.log", "/dev/null", "pipe:[8812]", ""}) {
    const std::vector<ProcessView> chain = {{4101, "mpirun", target}, {4000, "bash", "/dev/pts/0"}};
    EXPECT_FALSE(progress_reaches_terminal(false, true, chain)) << target;
  }
}

TEST(LauncherTerminal, WalksPastRelaysToTheLauncher) {
  // A wrapper shell between mpirun and the rank, and MPICH's Hydra proxy.
  EXPECT_TRUE(progress_reaches_terminal(
      false, true,
      {{5, "sh", "pipe:[1]"}, {4, "mpirun.openmpi", "/dev/pts/4"}, {3, "bash", "/dev/pts/4"}}));
  EXPECT_TRUE(progress_reaches_terminal(
      false, true, {{7, "hydra_pmi_proxy", "socket:[99]"}, {6, "mpiexec.hydra", "/dev/pts/2"}}));
  // A relay that writes to a file captures the output before any launcher.
  EXPECT_FALSE(
      progress_reaches_terminal(false, true, {{5, "sh", "/tmp/out"}, {4, "mpirun", "/dev/pts/4"}}));
}

TEST(LauncherTerminal, WithoutALauncherAboveAPipeIsNotATerminal) {
  // `mhim sweep ... | less` without MPI variables, and a rank whose ancestors hold no launcher
  // (a remote node's daemon under ssh).
  EXPECT_FALSE(progress_reaches_terminal(false, false, kInteractive));
  EXPECT_FALSE(
      progress_reaches_terminal(false, true, {{9, "orted", "socket:[3]"}, {8, "sshd", ""}}));
  // Ancestors are not trusted when no launcher variable is set.
  EXPECT_FALSE(progress_reaches_terminal(false, false, {{4101, "mpirun", "/dev/pts/0"}}));
}

TEST(LauncherTerminal, NamesAndPaths) {
  EXPECT_TRUE(is_launcher_name("mpirun"));
  EXPECT_TRUE(is_launcher_name("mpiexec.hydra"));
  EXPECT_TRUE(is_launcher_name("prterun"));
  EXPECT_TRUE(is_launcher_name("srun"));
  EXPECT_FALSE(is_launcher_name("mpirunner"));
  EXPECT_FALSE(is_launcher_name("orted"));
  EXPECT_TRUE(is_terminal_path("/dev/pts/12"));
  EXPECT_TRUE(is_terminal_path("/dev/tty1"));
  EXPECT_FALSE(is_terminal_path("/dev/null"));
  EXPECT_FALSE(is_terminal_path("pipe:[1]"));
}

TEST(LauncherTerminal, ThisTestsOwnAncestorsAreReadable) {
  const std::vector<ProcessView> chain = ancestors_from_proc(3);
  ASSERT_FALSE(chain.empty());
  EXPECT_EQ(chain[0].pid, int(::getppid()));
  EXPECT_FALSE(chain[0].name.empty());
}

}  // namespace
}  // namespace mil::orch
