// mhim zygote: the fork server a worker rank starts once (worker/supervise/fork_server.h). By the
// time it serves, LibTorch is loaded and initialised in it, so each job process it forks starts in
// milliseconds; it runs `mhim train` exactly as an exec'd child would.
#include <ATen/Parallel.h>

#include <cstdio>
#include <cstdlib>

#include "app/args.h"
#include "app/commands.h"
#include "worker/supervise/fork_server.h"

namespace mil::app {

int cmd_zygote(const Tokens& tokens) {
  int fd = -1, parent = -1;
  try {
    const Args args(tokens, {"fd", "parent-pid", "label"}, {});  // the label only names it in `ps`
    fd = args.get_int("fd", -1);
    parent = args.get_int("parent-pid", -1);
    if (fd < 0 || parent <= 0) throw UsageError("--fd and --parent-pid are required");
  } catch (const UsageError& e) {
    return usage_failure("zygote", e.what());
  }
  // LibTorch's pthreadpool (caffe2::pthreadpool(), which at::set_num_threads sizes) is rebuilt in
  // every forked job at the zygote's size: left unset that is one worker per core, started and then
  // spun down again by the job's own set_num_threads, which cost no-op jobs ~20 ms of CPU each
  // here. Sized to one thread now, it has no worker thread to copy, and jobs that want more threads
  // start them.
  at::set_num_threads(1);
  const int code = worker::serve_forks(fd, parent, [](const std::vector<std::string>& args) {
    if (args.empty() || args[0] != "train") {
      std::fprintf(stderr, "mhim zygote: only `train` runs in a forked job, not '%s'\n",
                   args.empty() ? "" : args[0].c_str());
      return 2;
    }
    return cmd_train(Tokens(args.begin() + 1, args.end()));
  });
  // No static destructors (LibTorch's take ~1 s): the rank waits for this exit when it stops.
  std::fflush(nullptr);
  std::_Exit(code);
}

}  // namespace mil::app
