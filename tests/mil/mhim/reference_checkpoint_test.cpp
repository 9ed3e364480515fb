// Checkpoints both ways with the unchanged reference (tests/fixtures/reference/checkpoints, written
// by make_reference_fixtures.py with the reference's MHIM classes at input 8, embedding 16): we
// load its v2 best checkpoint and v1's baseline checkpoint (patch_to_emb.* keys,
// fold_k_model_best_auc.pt), and what we write has exactly the keys and shapes of the reference's,
// which is what PyTorch's strict load_state_dict checks (tests/app/reference_checkpoint_check.py
// runs that load on a real job's file).
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/utils.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "mil/data/torch_pickle.h"
#include "mil/mhim/mhim_objective.h"
#include "mil/models/state_dict.h"
#include "tests/mil/train/reference_fixture.h"
#include "tests/support/temp_dir.h"

namespace mil {
namespace {

const std::string kCheckpoints =
    std::string(MIL_SOURCE_DIR) + "/tests/fixtures/reference/checkpoints/";

/// The networks the fixtures hold: input 8, embedding 16, attn aggregator; v2 with the GRN (k = 2).
std::shared_ptr<MhimNetworkImpl> small_network(bool merge) {
  auto net = std::make_shared<MhimNetworkImpl>(mhim_network_options_from_json(
      {{"embed_dim", 16}, {"merge", merge}, {"merge_k", 2}, {"merge_ratio", 0.5}}, /*input_dim=*/8,
      /*class_count=*/2));
  net->eval();
  return net;
}

StateDict expected_tensors(const std::string& path) { return read_state_dict(path); }

at::Tensor tensor_named(const StateDict& state, const std::string& name) {
  for (const auto& [key, value] : state) {
    if (key == name) return value;
  }
  ADD_FAILURE() << "no tensor '" << name << "'";
  return at::zeros({1});
}

void expect_logits(MhimNetworkImpl& net, const StateDict& expected, const std::string& key) {
  torch::NoGradGuard no_grad;
  const at::Tensor logits = net.forward(tensor_named(expected, "bag")).logits;
  EXPECT_TRUE(logits.allclose(tensor_named(expected, key), 1e-5, 1e-6))
      << key << ": ours " << logits << " reference " << tensor_named(expected, key);
}

TEST(ReferenceCheckpoint, OursLoadsTheReferencesV2BestCheckpointStudentAndTeacher) {
  const std::string path = kCheckpoints + "v2/fold_0_model_best.pt";
  const StateDict expected = expected_tensors(kCheckpoints + "v2/expected.pt");
  auto student = small_network(true), teacher = small_network(true);
  load_state_dict(*student, from_reference_names(read_state_dict(path)), /*strict=*/true);
  load_state_dict(*teacher, from_reference_names(read_state_dict_part(path, "teacher")),
                  /*strict=*/true);
  expect_logits(*student, expected, "student_logits");
  expect_logits(*teacher, expected, "teacher_logits");
}

TEST(ReferenceCheckpoint, AV2FoldFolderIsATeacherInitAndItsModelPartTheTeacher) {
  const StateDict expected = expected_tensors(kCheckpoints + "v2/expected.pt");
  auto student = small_network(true);
  MhimOptions options;
  options.teacher_init = kCheckpoints + "v2";
  MhimObjective objective(*student, options, /*fold_index=*/0, /*total_steps=*/1);
  objective.teacher().eval();
  expect_logits(objective.teacher(), expected,
                "student_logits");  // the reference loads pre_dict["model"]
}

TEST(ReferenceCheckpoint, AV1FoldFolderOfModelBestAucWithPatchToEmbKeysIsATeacherInit) {
  const std::string folder = kCheckpoints + "v1";
  EXPECT_EQ(teacher_checkpoint_path(folder, 0), folder + "/fold_0_model_best_auc.pt");
  const StateDict expected = expected_tensors(kCheckpoints + "v1/expected.pt");
  auto student = small_network(false);
  MhimOptions options;
  options.teacher_init = folder;
  options.student_init = "fc";  // v1's default: the student's embedding from the same checkpoint
  MhimObjective objective(*student, options, /*fold_index=*/0, /*total_steps=*/1);
  objective.teacher().eval();
  expect_logits(objective.teacher(), expected, "logits");
  const StateDict file = read_state_dict(folder + "/fold_0_model_best_auc.pt");
  EXPECT_TRUE(student->feature->named_parameters()["0.weight"].equal(
      tensor_named(file, "patch_to_emb.0.weight")));
}

TEST(ReferenceCheckpoint, OurBestCheckpointHasTheReferencesKeysShapesAndLayout) {
  testing::TempDir dir;
  auto student = small_network(true), teacher = small_network(true);
  write_best_checkpoint(with_reference_aliases(state_dict_of(*student)),
                        with_reference_aliases(state_dict_of(*teacher)),
                        /*epoch=*/3, dir / "model_best.pt");
  const StateDict reference = read_state_dict(kCheckpoints + "v2/fold_0_model_best.pt");
  const auto shapes = [](const StateDict& state) {
    std::map<std::string, std::vector<int64_t>> out;
    for (const auto& [name, tensor] : state) out[name] = tensor.sizes().vec();
    return out;
  };
  for (const char* part : {"model", "teacher"}) {
    const StateDict ours = read_state_dict_part(dir / "model_best.pt", part);
    EXPECT_EQ(shapes(ours), shapes(reference))
        << part << ": a strict load needs the same keys and shapes";
    EXPECT_TRUE(tensor_named(ours, "merge.global_q").equal(tensor_named(ours, "merge.global_q_mm")))
        << part;
  }
  std::ifstream in(dir / "model_best.pt", std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  EXPECT_EQ(testing::dict_at(load_torch_save_bytes(bytes), "epoch").toInt(), 3);
}

}  // namespace
}  // namespace mil
