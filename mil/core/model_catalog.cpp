#include "mil/core/model_catalog.h"

#include <cmath>
#include <stdexcept>

namespace mil {
namespace {

/// Width of the instance embedding of every reference model.
constexpr double kWidth = 512;

/// ABMIL: D -> 512 embedding, 512 -> 128 -> 1 attention, attention-weighted sum.
double abmil_flops(int64_t n, int64_t dim) {
  const double N = double(n), E = kWidth;
  return 2 * N * double(dim) * E + 2 * N * E * 128 + 2 * N * 128 + 2 * N * E;
}

/// Gated ABMIL: two 512 -> 384 attention branches multiplied, then 384 -> 1.
double gabmil_flops(int64_t n, int64_t dim) {
  const double N = double(n), E = kWidth;
  return 2 * N * double(dim) * E + 2 * (2 * N * E * 384) + N * 384 + 2 * N * 384 + 2 * N * E;
}

/// TransMIL: two Nyström layers (8 heads of 64, 256 landmarks, 6 pseudo-inverse iterations, a
/// 33-tap residual convolution) over the bag padded to a square plus a class token, and PPEG's
/// 7x7, 5x5 and 3x3 depth-wise convolutions.
double transmil_flops(int64_t n, int64_t dim) {
  const double E = kWidth, H = 8, dh = 64, m = 256, iterations = 6, kernel = 33;
  const int64_t side = static_cast<int64_t>(std::ceil(std::sqrt(double(n))));
  const double grid = double(side * side), seq = grid + 1;
  const double padded = std::ceil(seq / m) * m;
  const double layer = 2 * padded * E * 3 * E                // q, k, v
                       + 2 * H * seq * m * dh                // kernel 1 (real rows)
                       + 2 * H * m * m * dh                  // kernel 2
                       + 2 * H * m * padded * dh             // kernel 3
                       + iterations * 4 * 2 * H * m * m * m  // pseudo-inverse
                       + 2 * H * seq * m * m                 // kernel 1 · pinv
                       + 2 * H * m * padded * dh             // kernel 3 · v
                       + 2 * H * seq * m * dh                // (..) · (..)
                       + 2 * H * padded * dh * kernel        // residual convolution
                       + 2 * seq * E * E;                    // output projection
  return 2 * double(n) * double(dim) * E + 2 * layer + 2 * grid * E * (49 + 25 + 9);
}

/// Options of every attention aggregator with one attention branch width.
const std::vector<std::string> kAttentionKeys = {"embed_dim", "attention_dim", "dropout",
                                                 "activation"};

/// Options of the MHIM network (mil/mhim/mhim_network.h): the aggregator and the GRN (merge*).
const std::vector<std::string> kMhimNetworkKeys = {
    "embed_dim", "activation", "dropout",     "baseline", "da_act",
    "merge",     "merge_k",    "merge_ratio", "merge_mm", "merge_test"};

/// The MHIM network's options plus the training keys of mil/mhim/mhim_objective.h.
std::vector<std::string> mhim_keys() {
  std::vector<std::string> keys = kMhimNetworkKeys;
  for (const char* key : {"mask_ratio", "mask_ratio_l", "mask_ratio_h", "mask_ratio_hr", "mrh_sche",
                          "attn2score", "temp_t", "main_alpha", "aux_alpha", "mm", "mm_sche",
                          "teacher_init", "teacher_epoch", "teacher_train_mode", "student_init",
                          "mask_stats"}) {
    keys.emplace_back(key);
  }
  return keys;
}

std::vector<ModelInfo> build_catalog() {
  // Cost factors, measured: CPU seconds of one training epoch on one thread, fp32, over abmil's
  // 0.871 s (`mhim bench train --threads 1`, 4 bags of 2,000-6,000 instances, D = 1024:
  // scripts/cost_table_bench.sh, AMD EPYC, 2026-12-07). mhim and mhim_pure: on their default
  // aggregator, attn; orchestrator/schedule/cost_estimate.h derives the others. For comparison,
  // the multiply-adds per instance give gabmil 917,888 / 589,952 = 1.56 (forward_flops).
  std::vector<ModelInfo> c;
  c.push_back({"abmil", "attention-based MIL", kAttentionKeys, ObjectiveKind::kTaskLoss, true, 1.0,
               abmil_flops});  // 0.871 s
  c.push_back({"gabmil", "gated attention-based MIL", kAttentionKeys, ObjectiveKind::kTaskLoss,
               true, 1.95, gabmil_flops});  // 1.699 s
  c.push_back({"transmil",
               "TransMIL: Nystrom self-attention with PPEG",
               {"embed_dim", "heads", "dropout", "attention_dropout", "activation"},
               ObjectiveKind::kTaskLoss,
               true,
               11.52,
               transmil_flops});  // 10.030 s
  c.push_back({"dsmil",
               "DSMIL: max-instance and critical-instance attention streams",
               {"embed_dim", "query_dim", "dropout", "activation", "aux_alpha"},
               ObjectiveKind::kTaskLoss,
               true,
               1.58,
               nullptr});  // 1.373 s
  const std::vector<std::string> clam_keys = {"embed_dim",  "attention_dim", "dropout",
                                              "activation", "k_sample",      "aux_alpha"};
  c.push_back({"clam_sb", "CLAM, one attention branch, with the instance clustering loss",
               clam_keys, ObjectiveKind::kTaskLoss, true, 1.64, nullptr});  // 1.427 s
  c.push_back({"clam_mb", "CLAM, one attention branch per class", clam_keys,
               ObjectiveKind::kTaskLoss, true, 1.55, nullptr});  // 1.351 s
  c.push_back({"dtfd",
               "DTFD-MIL: double-tier feature distillation over pseudo-bags",
               {"embed_dim", "attention_dim", "pseudo_bag_count", "dropout", "activation"},
               ObjectiveKind::kTaskLoss,
               true,
               1.12,
               nullptr});  // 0.979 s
  const std::vector<std::string> pooling_keys = {"hidden_dim", "dropout", "activation"};
  c.push_back({"meanmil", "mean pooling of instance logits", pooling_keys, ObjectiveKind::kTaskLoss,
               true, 0.75, nullptr});  // 0.656 s
  c.push_back({"maxmil", "max pooling of instance logits", pooling_keys, ObjectiveKind::kTaskLoss,
               true, 0.79, nullptr});  // 0.685 s
  c.push_back({"mhim_pure", "the MHIM network alone (the teacher baseline)", kMhimNetworkKeys,
               ObjectiveKind::kTaskLoss, false, 0.84, nullptr});  // 0.730 s
  c.push_back({"mhim", "MHIM-MIL: a momentum teacher masks hard instances for the student",
               mhim_keys(), ObjectiveKind::kMhim, false, 1.66, nullptr});  // 1.444 s
  return c;
}

}  // namespace

const std::vector<ModelInfo>& model_catalog() {
  static const std::vector<ModelInfo> kCatalog = build_catalog();
  return kCatalog;
}

const ModelInfo* find_model(const std::string& name) {
  for (const ModelInfo& info : model_catalog()) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

const ModelInfo& model_info(const std::string& name) {
  if (const ModelInfo* info = find_model(name)) return *info;
  throw std::runtime_error("unknown model '" + name + "' (available: " + model_names() + ")");
}

std::string model_names(const std::string& separator) {
  std::string names;
  for (const ModelInfo& info : model_catalog()) {
    names += (names.empty() ? "" : separator) + info.name;
  }
  return names;
}

}  // namespace mil
