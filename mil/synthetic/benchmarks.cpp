#include "mil/synthetic/benchmarks.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <stdexcept>

#include "mil/data/feature_io.h"
#include "mil/data/instance_labels.h"
#include "mil/data/splits.h"
#include "mil/synthetic/layout.h"

namespace mil {
namespace fs = std::filesystem;
namespace {

enum class Task { kDiagnosis, kSubtyping, kSurvival };

/// A benchmark's cohort as the reference's label CSVs have it (datasets/dataset_csv/), at scale 1.
struct TaskProfile {
  const char* name;
  Task task;
  const char* label_file;
  int cases;                 ///< Slides (CAMELYON) or patients.
  int positives;             ///< Label 1 (tumor, LUSC, ILC), or events for survival.
  double extra_slide_share;  ///< Patients with a second diagnostic slide.
  double mean_instances;     ///< Mean patches per slide.
  const char* class0;        ///< Text labels (TCGA subtyping), or the survival Study.
  const char* class1;
  double time_min, time_max;       ///< Survival: months.
  std::vector<const char*> sites;  ///< TCGA tissue-source-site codes for case ids.
};

const std::vector<const char*> kLuadSites = {"05", "35", "44", "49", "50", "55", "64",
                                             "67", "69", "73", "75", "78", "86", "91",
                                             "97", "99", "J2", "L4", "MP", "NJ"};
const std::vector<const char*> kLuscSites = {"18", "21", "22", "33", "34", "37", "39",
                                             "43", "46", "51", "56", "58", "60", "63",
                                             "66", "68", "70", "77", "85", "NC"};

const std::vector<TaskProfile>& task_profiles() {
  static const std::vector<TaskProfile> profiles = {
      {"camelyon", Task::kDiagnosis, "label_c16.csv", 398, 159, 0.0, 9000, "", "", 0, 0, {}},
      {"tcga-nsclc",
       Task::kSubtyping,
       "label_tcga_nsclc.csv",
       956,
       478,
       0.10,
       10150,
       "LUAD",
       "LUSC",
       0,
       0,
       {}},
      {"tcga-brca",
       Task::kSubtyping,
       "label_tcga_brca.csv",
       1000,
       200,
       0.08,
       10000,
       "IDC",
       "ILC",
       0,
       0,
       {"A2", "A7", "A8", "AC", "AN", "AO", "AR", "B6", "BH", "C8", "D8", "E2", "E9", "EW", "GM",
        "LL", "OL", "S3"}},
      {"tcga-blca-surv",
       Task::kSurvival,
       "label_blca_surv.csv",
       376,
       171,
       0.186,
       10000,
       "tcga_blca",
       "",
       1.23,
       165.57,
       {"BT", "C4", "DK", "E7", "FD", "G2", "GC", "GD", "GU", "GV", "H4", "HQ", "K4", "KQ", "LC",
        "LT", "XF", "YC", "ZF"}},
      {"tcga-luad-surv", Task::kSurvival, "label_luad_surv.csv", 455, 159, 0.138, 10000,
       "tcga_luad", "", 1.1, 241.6, kLuadSites},
      {"tcga-lusc-surv", Task::kSurvival, "label_lusc_surv.csv", 452, 190, 0.071, 10000,
       "tcga_lusc", "", 1.0, 176.23, kLuscSites},
  };
  return profiles;
}

/// How an encoder renders instances: shifts along hidden unit directions, in noise standard
/// deviations.
struct EncoderProfile {
  const char* name;
  double easy;        ///< Obvious tumour ("easy" witnesses).
  double hard;        ///< Rare weak witnesses: near the tail of thousands of background instances.
  double tumour;      ///< Tumour vs stroma in subtyping and survival slides (not class-specific).
  double subtype;     ///< Class direction on tumour instances (subtyping).
  double aggressive;  ///< Survival: the instances whose share grows with risk.
  /// Std of each slide's shift along each of kNuisanceDirections shared directions (stain, scanner,
  /// site): a low-rank batch effect, as real ones are, that a model must learn to ignore.
  double slide_offset;
};

const EncoderProfile kEncoders[] = {{"r50", 5.0, 3.0, 3.0, 0.7, 2.0, 2.0},
                                    {"uni", 7.0, 4.0, 4.0, 1.2, 3.0, 1.0}};
constexpr int kNuisanceDirections = 8;  ///< Rank of the slide-level batch effect.

/// splitmix64: turns related seeds (seed, task, slide) into unrelated streams.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint64_t derive(std::uint64_t seed, const std::string& label, std::uint64_t index = 0) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a of the label
  for (unsigned char c : label) h = (h ^ c) * 1099511628211ULL;
  return mix(mix(seed ^ h) + index);
}

/// Portable draws (std distributions differ between standard libraries).
struct Rng {
  std::mt19937_64 engine;
  explicit Rng(std::uint64_t seed) : engine(seed) {}
  double uniform() { return double(engine() >> 11) * 0x1.0p-53; }
  double open_uniform() { return (double(engine() >> 11) + 0.5) * 0x1.0p-53; }
  int below(int n) { return int(engine() % std::uint64_t(n)); }
  double normal() {
    return std::sqrt(-2.0 * std::log(open_uniform())) * std::cos(2.0 * M_PI * uniform());
  }
};

enum Role : std::uint8_t { kBackground = 0, kTumour, kEasy, kHard, kAggressive };

/// The truth code (mil/data/instance_labels.h) of each role: CAMELYON's easy and hard witnesses,
/// and the subtyping stand-ins' key instances, which only class-1 slides hold, are witnesses.
constexpr std::uint8_t kTruthCode[] = {kRoleBackground, kRoleTumour, kRoleEasyWitness,
                                       kRoleHardWitness, kRoleAggressive};

/// One slide: what it is called, what it holds, and the truth behind it.
struct SlidePlan {
  std::string id;
  int64_t instances = 0;
  std::vector<std::uint8_t> roles;  ///< Per instance.
  int easy = 0, hard = 0;
};

/// One bag of the label file: a CAMELYON slide, or a TCGA patient with one or two slides.
struct CasePlan {
  std::string id;
  int label = 0;      ///< Class; for survival, the event status.
  double risk = 0.0;  ///< Survival: latent log-hazard, standard normal.
  double time = 0.0;  ///< Survival: months to event or censoring.
  std::vector<SlidePlan> slides;
};

int scaled(double count, double scale, int minimum) {
  return std::max(minimum, int(std::lround(count * scale)));
}

std::string tcga_case_id(const std::vector<const char*>& sites, Rng& rng,
                         std::set<std::string>& used) {
  static const char kAlphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (;;) {
    std::string id = std::string("TCGA-") + sites[std::size_t(rng.below(int(sites.size())))] + "-";
    for (int i = 0; i < 4; ++i) id += kAlphabet[rng.below(36)];
    if (used.insert(id).second) return id;
  }
}

std::string uuid(Rng& rng) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) out += '-';
    out += kHex[rng.below(16)];
  }
  return out;
}

/// Patches per slide: log-normal (sigma 0.5) around the profile's mean, within [0.15, 4] x the
/// mean.
int64_t instance_count(const TaskProfile& p, double scale, Rng& rng) {
  const double sigma = 0.5, mu = std::log(p.mean_instances) - sigma * sigma / 2;
  const double n = std::clamp(std::exp(mu + sigma * rng.normal()), 0.15 * p.mean_instances,
                              4.0 * p.mean_instances);
  return std::max<int64_t>(8, std::llround(n * scale));
}

/// Instance roles of one slide, drawn from the slide's own stream so both encoders share them.
void plan_roles(SlidePlan& s, const TaskProfile& p, const CasePlan& c, Rng& rng) {
  const int64_t n = s.instances;
  s.roles.assign(std::size_t(n), kBackground);
  std::vector<int64_t> order(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[std::size_t(i)] = i;
  deterministic_shuffle(order, rng.engine);
  std::size_t next = 0;
  const auto assign = [&](int64_t count, Role role) {
    count = std::min<int64_t>(count, n - int64_t(next));
    for (int64_t k = 0; k < count; ++k) s.roles[std::size_t(order[next++])] = role;
    return int(count);
  };
  if (p.task == Task::kDiagnosis) {
    if (c.label == 1) {
      s.hard = assign(2 + rng.below(9), kHard);  // 2-10 weak witnesses in every tumour slide
      if (rng.uniform() < 0.8) {  // most also show obvious tumour: 0.2% to 30% of the slide
        const double share =
            std::exp(std::log(0.002) + rng.uniform() * (std::log(0.3) - std::log(0.002)));
        s.easy = assign(std::max<int64_t>(1, std::llround(share * double(n))), kEasy);
      }
    }
    return;
  }
  const double tumour_share = 0.2 + 0.5 * rng.uniform();
  const int64_t tumour = std::max<int64_t>(1, std::llround(tumour_share * double(n)));
  if (p.task == Task::kSubtyping) {
    if (c.label == 1) s.hard = assign(2 + rng.below(9), kHard);
    assign(tumour, kTumour);
    return;
  }
  const double aggressive_share = 1.0 / (1.0 + std::exp(-1.5 * c.risk));
  s.easy = assign(std::llround(aggressive_share * double(tumour)), kAggressive);
  assign(tumour - s.easy, kTumour);
}

/// Every case of a stand-in: ids, labels (or times and events), slides and instance roles.
std::vector<CasePlan> plan_cohort(const TaskProfile& p, const StandInOptions& o) {
  Rng rng(derive(o.seed, std::string("cohort/") + p.name));
  const int cases = scaled(p.cases, o.scale, 10);
  const double share = double(cases) / p.cases;
  std::vector<CasePlan> plan;
  if (p.task == Task::kDiagnosis) {  // CAMELYON16 names: normal_001.., tumor_001.., test_001..
                                     // (049, 114 absent)
    const int normal = scaled(159, share, 1), tumour = scaled(111, share, 1),
              test_tumour = scaled(48, share, 1);
    const int test_normal = std::max(1, cases - normal - tumour - test_tumour);
    char id[24];
    for (int i = 1; i <= normal; ++i)
      std::snprintf(id, sizeof id, "normal_%03d", i), plan.push_back({id, 0});
    for (int i = 1; i <= tumour; ++i)
      std::snprintf(id, sizeof id, "tumor_%03d", i), plan.push_back({id, 1});
    std::vector<int> test_labels(std::size_t(test_normal + test_tumour), 0);
    std::fill(test_labels.begin(), test_labels.begin() + test_tumour, 1);
    deterministic_shuffle(test_labels, rng.engine);
    for (int i = 1, k = 0; k < int(test_labels.size()); ++i) {
      if (i == 49 || i == 114) continue;
      std::snprintf(id, sizeof id, "test_%03d", i);
      plan.push_back({id, test_labels[std::size_t(k++)]});
    }
    for (CasePlan& c : plan) c.slides.push_back(SlidePlan{c.id});
  } else {
    const int positives = std::clamp(int(std::lround(double(p.positives) * share)), 2, cases - 2);
    std::vector<int> labels(std::size_t(cases), 0);
    std::fill(labels.begin(), labels.begin() + positives, 1);
    if (p.task == Task::kSubtyping) deterministic_shuffle(labels, rng.engine);
    std::set<std::string> used;
    for (int i = 0; i < cases; ++i) {
      CasePlan c;
      c.label = labels[std::size_t(i)];
      const auto& sites = p.task == Task::kSubtyping && p.sites.empty()
                              ? (c.label ? kLuscSites : kLuadSites)
                              : p.sites;
      c.id = tcga_case_id(sites, rng, used);
      const int slides = rng.uniform() < p.extra_slide_share ? 2 : 1;
      for (int k = 1; k <= slides; ++k)
        c.slides.push_back(SlidePlan{c.id + "-01Z-00-DX" + std::to_string(k) + "." + uuid(rng)});
      plan.push_back(std::move(c));
    }
  }
  if (p.task == Task::kSurvival) {
    // Risk sets the hazard (exponential times, median 24 months at risk 0, hazard ratio e per unit
    // of risk); exactly `positives` cases observe their event, preferring high risk (Gumbel top-k).
    std::vector<std::pair<double, std::size_t>> keys;
    for (std::size_t i = 0; i < plan.size(); ++i) {
      CasePlan& c = plan[i];
      c.risk = rng.normal();
      c.time = -std::log(rng.open_uniform()) / (std::log(2.0) / 24.0 * std::exp(c.risk));
      keys.emplace_back(c.risk - std::log(-std::log(rng.open_uniform())), i);
    }
    const int events = std::clamp(int(std::lround(double(p.positives) * share)), 2, cases - 1);
    std::sort(keys.begin(), keys.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    for (std::size_t k = 0; k < keys.size(); ++k) {
      CasePlan& c = plan[keys[k].second];
      c.label = k < std::size_t(events) ? 1 : 0;
      const double event = std::clamp(c.time, p.time_min, p.time_max);
      const double t =
          c.label ? event : p.time_min + rng.uniform() * (event - p.time_min);  // censored earlier
      c.time = std::max(p.time_min, std::round(t * 100.0) / 100.0);
    }
  }
  for (CasePlan& c : plan) {
    for (SlidePlan& s : c.slides) {
      Rng slide_rng(derive(o.seed, std::string("slide/") + p.name + "/" + s.id));
      s.instances = instance_count(p, o.scale, slide_rng);
      plan_roles(s, p, c, slide_rng);
    }
  }
  return plan;
}

/// An encoder's hidden unit directions, one per kind of signal.
struct Directions {
  at::Tensor
      tumour;  ///< Tumour vs stroma (shared by both classes), also the CAMELYON witness direction.
  at::Tensor subtype;     ///< +: class 1, -: class 0, on tumour instances (subtyping).
  at::Tensor key;         ///< Rare class-1 key instances (subtyping).
  at::Tensor aggressive;  ///< Survival: share grows with risk.
  at::Tensor nuisance;    ///< [kNuisanceDirections, D] unit rows: the slide batch-effect subspace.
};

/// The encoder's view of one slide of a case with `label`: noise, a slide offset in the nuisance
/// subspace, and shifts along the directions of each instance's role.
at::Tensor render(const SlidePlan& s, int label, Task task, const EncoderProfile& e,
                  const Directions& d, std::uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const int64_t dim = d.tumour.size(0);
  at::Tensor x = at::randn({s.instances, dim}, gen, at::kFloat);
  x.add_(at::matmul(at::randn({1, kNuisanceDirections}, gen, at::kFloat) * e.slide_offset,
                    d.nuisance));
  /// Adds shift * direction to every instance whose role is in `roles`.
  const auto shift = [&](std::initializer_list<Role> roles, const at::Tensor& direction,
                         double amount) {
    at::Tensor coefficient = at::zeros({s.instances}, at::kFloat);
    float* c = coefficient.data_ptr<float>();
    for (int64_t i = 0; i < s.instances; ++i) {
      for (Role r : roles) c[i] = s.roles[std::size_t(i)] == r ? float(amount) : c[i];
    }
    x.addr_(coefficient, direction);
  };
  switch (task) {
    case Task::kDiagnosis:
      shift({kEasy}, d.tumour, e.easy);
      shift({kHard}, d.tumour, e.hard);
      break;
    case Task::kSubtyping:
      shift({kTumour}, d.tumour, e.tumour);
      shift({kTumour}, d.subtype, label == 1 ? e.subtype : -e.subtype);
      shift({kHard}, d.key, e.hard);
      break;
    case Task::kSurvival:
      shift({kTumour, kAggressive}, d.tumour, e.tumour);
      shift({kAggressive}, d.aggressive, e.aggressive);
      break;
  }
  return x;
}

}  // namespace

std::vector<std::string> benchmark_stand_in_names() {
  std::vector<std::string> names;
  for (const TaskProfile& p : task_profiles()) {
    for (const EncoderProfile& e : kEncoders) names.push_back(std::string(p.name) + "-" + e.name);
  }
  return names;
}

namespace {

/// The task and encoder of stand-in `name`, with the options checked.
std::pair<const TaskProfile*, const EncoderProfile*> lookup(const std::string& name,
                                                            const StandInOptions& o) {
  for (const TaskProfile& p : task_profiles()) {
    for (const EncoderProfile& e : kEncoders) {
      if (name != std::string(p.name) + "-" + e.name) continue;
      if (!(o.scale > 0 && o.scale <= 1))
        throw std::invalid_argument("synth: scale must be in (0, 1]");
      if (o.feature_dim < 4) throw std::invalid_argument("synth: feature dim must be >= 4");
      if (o.format != "pt" && o.format != "h5")
        throw std::invalid_argument("synth: format must be pt or h5");
      return {&p, &e};
    }
  }
  std::string names;
  for (const auto& n : benchmark_stand_in_names()) names += (names.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown benchmark '" + name + "' (one of " + names + ")");
}

}  // namespace

nlohmann::json plan_benchmark_stand_in(const std::string& name, const StandInOptions& o) {
  const TaskProfile& p = *lookup(name, o).first;
  nlohmann::json cases = nlohmann::json::array();
  int64_t slides = 0, instances = 0, positives = 0;
  for (const CasePlan& c : plan_cohort(p, o)) {
    nlohmann::json j = {{"id", c.id}, {"label", c.label}, {"slides", nlohmann::json::array()}};
    if (p.task == Task::kSurvival) j["risk"] = c.risk, j["time"] = c.time;
    for (const SlidePlan& s : c.slides) {
      j["slides"].push_back({{"id", s.id}, {"instances", s.instances}});
      instances += s.instances;
      ++slides;
    }
    positives += c.label;
    cases.push_back(j);
  }
  return {{"counts",
           {{"bags", cases.size()},
            {"slides", slides},
            {"positives", positives},
            {"instances", instances},
            {"feature_bytes", instances * o.feature_dim * 4}}},
          {"cases", cases}};
}

nlohmann::json write_benchmark_stand_in(const std::string& name, const std::string& root,
                                        const StandInOptions& o) {
  const auto [profile, encoder] = lookup(name, o);
  const TaskProfile& p = *profile;
  const bool survival = p.task == Task::kSurvival;
  const std::vector<CasePlan> cohort = plan_cohort(p, o);

  // The encoder's hidden directions: random unit vectors, seeded per benchmark and encoder.
  at::Generator gen =
      at::make_generator<at::CPUGeneratorImpl>(derive(o.seed, name + "/directions"));
  const auto unit = [&] {
    const at::Tensor v = at::randn({o.feature_dim}, gen, at::kFloat);
    return v / v.norm();
  };
  Directions directions;
  directions.tumour = unit();
  directions.subtype = unit();
  directions.key = unit();
  directions.aggressive = unit();
  std::vector<at::Tensor> nuisance;
  for (int k = 0; k < kNuisanceDirections; ++k) nuisance.push_back(unit());
  directions.nuisance = at::stack(nuisance);

  const fs::path dir = fs::path(root) / (o.format == "pt" ? "pt_files" : "h5_files");
  fs::create_directories(dir);
  std::ofstream labels(fs::path(root) / p.label_file);
  if (survival) labels << "Study,ID,Event,Status,WSI\n";
  nlohmann::json truth = nlohmann::json::array();
  int64_t total_instances = 0;
  std::size_t total_slides = 0;
  for (const CasePlan& c : cohort) {
    nlohmann::json slides = nlohmann::json::array();
    for (const SlidePlan& s : c.slides) {
      const at::Tensor x = render(s, c.label, p.task, *encoder, directions,
                                  derive(o.seed, name + "/features/" + s.id));
      const std::string file = (dir / (s.id + "." + o.format)).string();
      std::vector<std::uint8_t> codes(s.roles.size());
      for (std::size_t i = 0; i < codes.size(); ++i) codes[i] = kTruthCode[s.roles[i]];
      if (o.format == "pt") {
        write_feature_file(file, x);
      } else {  // each role's instances in contiguous regions of the slide's patch grid
        const at::Tensor coords =
            region_coords(codes, {kRoleTumour, kRoleAggressive, kRoleEasyWitness, kRoleHardWitness},
                          derive(o.seed, name + "/layout/" + s.id));
        write_h5_slide(file, x, coords, /*float16=*/false);
      }
      write_instance_labels(file, at::from_blob(codes.data(), {int64_t(codes.size())}, at::kByte));
      if (survival) {
        char time[32];
        std::snprintf(time, sizeof time, "%.2f", c.time);
        labels << p.class0 << ',' << c.id << ',' << time << ',' << c.label << ',' << s.id << '\n';
      }
      slides.push_back(
          survival
              ? nlohmann::json{{"id", s.id}, {"instances", s.instances}, {"aggressive", s.easy}}
              : nlohmann::json{
                    {"id", s.id}, {"instances", s.instances}, {"easy", s.easy}, {"hard", s.hard}});
      total_instances += s.instances;
      ++total_slides;
    }
    if (p.task == Task::kDiagnosis) labels << c.id << ',' << c.label << '\n';
    if (p.task == Task::kSubtyping)
      labels << c.id << ',' << (c.label ? p.class1 : p.class0) << '\n';
    nlohmann::json t = {{"id", c.id}, {"label", c.label}, {"slides", slides}};
    if (survival) t["risk"] = c.risk, t["time"] = c.time;
    truth.push_back(t);
  }
  if (!labels)
    throw std::runtime_error("write error in " + (fs::path(root) / p.label_file).string());

  nlohmann::json dataset = {
      {"name", name},           {"kind", survival ? "survival" : "bags"}, {"root", root},
      {"labels", p.label_file}, {"class_count", survival ? 4 : 2},        {"features", o.format}};
  if (p.task == Task::kSubtyping) {
    dataset["label_map"] = {{p.class0, 0}, {p.class1, 1}};
    dataset["slide_match"] = "substring";
  }
  const nlohmann::json provenance = {
      {"generator", "mhim synth --benchmark"},
      {"benchmark", name},
      {"options",
       {{"scale", o.scale},
        {"seed", o.seed},
        {"feature_dim", o.feature_dim},
        {"format", o.format}}},
      {"counts",
       {{"bags", cohort.size()}, {"slides", total_slides}, {"instances", total_instances}}},
      {"encoder",
       {{"name", encoder->name},
        {"easy", encoder->easy},
        {"hard", encoder->hard},
        {"tumour", encoder->tumour},
        {"subtype", encoder->subtype},
        {"aggressive", encoder->aggressive},
        {"slide_offset", encoder->slide_offset}}},
      {"note",
       "synthetic stand-in with a planted signal; counts follow the reference's label CSVs, "
       "features are Gaussian, not real encoder outputs"}};
  std::ofstream(fs::path(root) / "synthetic.json") << provenance.dump(2) << '\n';
  std::ofstream(fs::path(root) / "truth.json") << truth.dump() << '\n';
  std::ofstream(fs::path(root) / "dataset.json") << dataset.dump(2) << '\n';
  return dataset;
}

}  // namespace mil
