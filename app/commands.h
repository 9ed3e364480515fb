#pragma once
// The mhim subcommands. Each takes the tokens after its name and returns the process exit code.
#include <atomic>
#include <string>
#include <vector>

namespace mil::app {

using Tokens = std::vector<std::string>;

int cmd_synth(const Tokens& tokens);
int cmd_train(const Tokens& tokens);
int cmd_sweep(const Tokens& tokens, int& argc, char**& argv);  ///< argc/argv for MPI_Init.
int cmd_leaderboard(const Tokens& tokens);
int cmd_bench(const Tokens& tokens);
int cmd_predict(const Tokens& tokens);
int cmd_bench_models(const Tokens& tokens);  ///< `mhim bench models`, reached through cmd_bench.
int cmd_bench_load(const Tokens& tokens);    ///< `mhim bench load`, reached through cmd_bench.
int cmd_bench_sync(
    const Tokens& tokens);  ///< `mhim bench sync` (under mpirun), reached through cmd_bench.
int cmd_bench_prune(const Tokens& tokens);  ///< `mhim bench prune`, reached through cmd_bench.
/// `mhim bench orchestrator` (argc/argv for MPI_Init when run under mpirun), reached through main.
int cmd_bench_orchestrator(const Tokens& tokens, int& argc, char**& argv);
int cmd_pack(const Tokens& tokens);
int cmd_check_data(const Tokens& tokens);
int cmd_slurm(const Tokens& tokens);
/// `mhim zygote --fd N --parent-pid P`: a worker rank's fork server
/// (worker/supervise/fork_server.h); not for people.
int cmd_zygote(const Tokens& tokens);
/// `mhim sweep --array`: this process as one standalone worker of a sweep shared through lock files
/// (orchestrator/results/lock_queue.h). Exit 0 all ok, 3 some failed, 75 stopped on request.
int run_sweep_array(const std::string& sweep_path, const std::vector<std::string>& overrides,
                    const std::string& results_dir, int requested_threads, double lock_timeout_s);

/// Intra-op threads for LibTorch: `requested` when > 0, else hardware threads / ranks_on_node (>=
/// 1). Sets them and returns the number set.
int configure_threads(int requested, int ranks_on_node);

/// Exit status of a run stopped by SIGTERM/SIGINT after checkpointing (EX_TEMPFAIL: "try again").
constexpr int kExitInterrupted = 75;

/// Makes SIGTERM, SIGINT and SIGUSR1 set the returned flag instead of killing the process, so a job
/// can finish its bag and checkpoint. The flag lives for the whole process.
const std::atomic<bool>* install_stop_handlers();

/// `help` with the line holding "@MODELS@" replaced by one line per model of the catalogue
/// (mil/core/model_catalog.h): its name and summary, indented as that line was.
std::string with_model_list(const char* help);

/// Prints "mhim <cmd>: <message>" and a --help hint to stderr; returns exit code 2.
int usage_failure(const std::string& command, const std::string& message);

}  // namespace mil::app
