#include "tests/mil/train/reference_fixture.h"

#include <fstream>
#include <iterator>
#include <stdexcept>

#include <ATen/ATen.h>

#include "mil/data/torch_pickle.h"

namespace mil::testing {
namespace {

const std::string kFixtures = std::string(MIL_SOURCE_DIR) + "/tests/fixtures/reference/";

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open fixture '" + path + "'");
  return nlohmann::json::parse(in);
}

c10::IValue read_torch_save(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open fixture '" + path + "'");
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  return load_torch_save_bytes(bytes);
}

constexpr std::uint64_t kGolden = 0x9E3779B97F4A7C15ULL;  ///< splitmix64's increment.

std::uint64_t fnv1a64(const std::string& text) {
  std::uint64_t h = 0xCBF29CE484222325ULL;
  for (unsigned char byte : text) h = (h ^ byte) * 0x100000001B3ULL;
  return h;
}

std::uint64_t splitmix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// u in [-1, 1) with 24 random bits for element `index` (exact in double, as numpy computes it).
double hash_uniform(std::uint64_t base, std::uint64_t index) {
  const std::uint64_t z = splitmix64(base + index + kGolden);
  return static_cast<double>(z >> 40) * (1.0 / 8388608.0) - 1.0;
}

}  // namespace

c10::IValue dict_at(const c10::IValue& dict, const std::string& key) {
  const auto generic = dict.toGenericDict();
  const auto it = generic.find(c10::IValue(key));
  if (it == generic.end()) throw std::runtime_error("fixture dict has no key '" + key + "'");
  return it->value();
}

StateDict hashed_state(const nlohmann::json& table, std::uint64_t seed,
                       const std::function<bool(const std::string&)>& keep) {
  StateDict state;
  for (const auto& row : table) {
    const std::string name = row.at("name").get<std::string>();
    if (keep && !keep(name)) continue;
    const auto shape = row.at("shape").get<std::vector<int64_t>>();
    const double offset = row.at("offset").get<double>(), scale = row.at("scale").get<double>();
    at::Tensor values = at::empty(shape, at::kFloat);
    float* out = values.data_ptr<float>();
    const std::uint64_t base = fnv1a64(name) ^ (seed * kGolden);
    for (int64_t i = 0; i < values.numel(); ++i) {
      out[i] =
          static_cast<float>(offset + scale * hash_uniform(base, static_cast<std::uint64_t>(i)));
    }
    state.emplace_back(name, values);
  }
  return state;
}

ReferenceCase load_reference_case(const std::string& name) {
  ReferenceCase c;
  c.name = name;
  c.meta = read_json(kFixtures + name + ".json");
  c.samples = read_torch_save(kFixtures + name + ".pt");
  c.mhim = c.option("model").get<std::string>() == "mhim";
  c.survival = c.option("loss").get<std::string>() == "nll_surv";
  const c10::IValue bags = read_torch_save(kFixtures + "bags.pt");
  const auto sizes = c.meta.at("bags").get<std::vector<int>>();
  const auto labels = c.meta.at("labels").get<std::vector<int>>();
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    Bag bag;
    bag.slide_id = name + "_bag" + std::to_string(i);
    bag.features = dict_at(bags, "n" + std::to_string(sizes[i])).toTensor().contiguous();
    bag.label = labels[i];
    if (c.survival) bag.censored = c.meta.at("censorship").at(i).get<double>() != 0.0;
    c.bags.push_back(bag);
  }
  return c;
}

ModelSpec our_model_spec(const ReferenceCase& c, const std::string& teacher_init) {
  ModelSpec spec;
  spec.name = c.option("model").get<std::string>();
  nlohmann::json& o = spec.options = nlohmann::json::object();
  o["activation"] = c.option("act");
  if (spec.name == "dsmil" || spec.name == "clam_sb" || spec.name == "clam_mb")
    o["aux_alpha"] = c.option("aux_alpha");
  if (spec.name == "dtfd") o.erase("activation");  // the builder never passes --act to DTFD (ReLU)
  if (!c.mhim) return spec;
  o["dropout"] = c.option("dropout");
  for (const char* key : {"baseline", "merge_k", "merge_ratio", "merge_mm", "mask_ratio",
                          "mask_ratio_l", "mask_ratio_h", "mask_ratio_hr", "mrh_sche", "attn2score",
                          "temp_t", "main_alpha", "aux_alpha", "mm", "mm_sche"}) {
    o[key] = c.option(key);
  }
  if (o["baseline"] == "attn") o["da_act"] = c.option("da_act");
  o["merge"] = c.option("merge_enable");
  o["teacher_init"] = teacher_init;
  return spec;
}

TrainSpec our_train_spec(const ReferenceCase& c) {
  TrainSpec spec;
  spec.epochs = c.option("num_epoch").get<int>();
  spec.lr = c.option("lr").get<double>();
  spec.weight_decay = c.option("weight_decay").get<double>();
  spec.schedule = c.option("lr_sche").get<std::string>();
  spec.lr_min = 1e-7;  // train_utils.build_train's timm cosine floor
  spec.warmup_epochs = c.option("warmup_epochs").get<int>();
  spec.early_stopping = false;
  spec.loss = c.survival ? "nll_surv" : "ce";
  spec.surv_alpha = 0.0;  // NLLSurvLoss(alpha=0.0) in build_train
  return spec;
}

}  // namespace mil::testing
