#pragma once
// A training checkpoint: the one file from which a killed or stopped fit() resumes bit-identically.
// It holds the model's and the optimizer's state, LibTorch's default CPU generator (dropout draws),
// the training objective's own tensors (MHIM: the teacher), the weights kept as the best so far and
// where the loop stands (TrainingState). It is replaced atomically, so a crash leaves the previous
// checkpoint or the new one, and it names its run, so a checkpoint of another run is refused.
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "mil/models/state_dict.h"
#include "mil/train/trainer.h"

namespace torch::optim {
class Optimizer;
}

namespace mil {

/// Where a training run stands: everything besides the model's, the optimizer's and the objective's
/// own tensors that a resumed run needs to continue exactly where it stopped.
struct TrainingState {
  int epoch = 0;                 ///< Epoch in progress, or the next to start.
  std::size_t position = 0;      ///< Bags of `order` already trained in this epoch.
  std::vector<int> order;        ///< This epoch's bag order once shuffled; the last epoch's before.
  std::mt19937_64 order_rng;     ///< Draws each epoch's shuffle.
  double loss_sum = 0.0;         ///< Sum of the finite task losses of the epoch in progress.
  int finite_steps = 0;          ///< Bags of the epoch in progress with a finite loss.
  int skipped_steps = 0;         ///< Bags of the epoch in progress whose loss was not finite.
  int64_t instances = 0;         ///< Instances trained on in the epoch in progress.
  double train_seconds = 0.0;    ///< Training time of the epoch in progress (before a stop).
  int best_epoch = -1;           ///< Epoch of `best_model`; -1 = none yet.
  double best_score = 0.0;       ///< The reference starts from 0 and saves on strict improvement.
  bool stopped_early = false;    ///< Early stopping fired; no epoch follows.
  int stopper_counter = 0;       ///< EarlyStopping::counter().
  double stopper_best = -1e300;  ///< EarlyStopping::best().
  std::string selection_metric;  ///< Metric that selects the best epoch; empty before validating.
  int teacher_best_epoch = -1;   ///< The objective's teacher model, selected as the student is.
  double teacher_best_score = 0.0;   ///< Its selection metric at teacher_best_epoch.
  std::vector<EpochRecord> history;  ///< Every finished epoch, in order.
  StateDict best_model;              ///< The student's weights at best_epoch; empty when -1.
  StateDict teacher_best;            ///< The teacher's weights at teacher_best_epoch.
  StateDict teacher_at_best;  ///< The teacher's weights at the student's best_epoch; may be empty.
};

/// Writes `state`, the state of `model` and `optimizer`, the default CPU generator's state and the
/// tensors of `extra` (the objective's extra_state()) to `path` for the run `fingerprint`. The file
/// is written beside `path`, synced and renamed over it: a reader never sees a torn checkpoint.
void write_checkpoint(const std::string& path, const std::string& fingerprint,
                      const TrainingState& state, const MilModelImpl& model,
                      const torch::optim::Optimizer& optimizer, const StateDict& extra);

/// Reads a checkpoint that write_checkpoint wrote for the run `fingerprint`: loads `model`,
/// `optimizer` and the default CPU generator, copies the saved tensors into those of `extra` by
/// name (in place), and returns the state. Also reads checkpoints written before the teacher was
/// validated or kept at the student's best (the teacher then starts unselected). Throws naming
/// `path` when its layout version is not this build's or it belongs to another run.
TrainingState read_checkpoint(const std::string& path, const std::string& fingerprint,
                              MilModelImpl& model, torch::optim::Optimizer& optimizer,
                              const StateDict& extra);

}  // namespace mil
