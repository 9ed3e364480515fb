// mhim bench load: how fast a dataset's slides load from its packed cache, from plain read()s of
// the same bytes, and from parsing the .pt files, with every value touched (summed) in each case.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <stdexcept>

#include "app/args.h"
#include "app/commands.h"
#include "app/dataset_args.h"
#include "mil/data/feature_io.h"
#include "mil/data/packed_cache.h"

namespace mil::app {
namespace {
namespace fs = std::filesystem;

constexpr const char* kHelp =
    R"(usage: mhim bench load (--root DIR | --sweep FILE --dataset NAME) [options]

Loads every slide of a packed cache three ways and prints the median throughput of each, in GB/s of
float32 feature values (N x D x 4 bytes, the same numerator for all three, so the ratios are time
ratios), and the ratios:
  cache   open the cache (mmap + index), take every slide's tensor (a zero-copy view for f32, a
          converted copy for f16) and sum it: the page faults and the reads are in the timing
  read()  pread() each slide's stored bytes from the same file into one reused buffer and sum them
          (the same conversion for f16): a plain sequential read of exactly those bytes
  .pt     read and parse each pt_files/<slide>.pt (torch.save zip + pickle) and sum it
Each method runs once untimed, then --repeats times. The OS page cache is not dropped (that needs
root): the default run is WARM, with the files' page-cache residency printed (mincore). --evict asks
the kernel to drop each file's cached pages before every timed run (posix_fadvise DONTNEED, best
effort, no root) and prints the residency that remained, so those runs are as cold as it managed.

options:
  --cache FILE      the cache (default <root>/packed.milpack; make it with mhim pack)
  --repeats R       timed runs per method (default 5)
  --threads T       LibTorch threads for the sums (default 1)
  --evict           drop page-cache pages before each timed run (see above)

)";

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

/// Share of the files' pages in the page cache (mincore over a throwaway mapping).
double resident_share(const std::vector<std::string>& paths) {
  const long page = ::sysconf(_SC_PAGESIZE);
  double resident = 0, total = 0;
  for (const std::string& path : paths) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat info {};
    ::fstat(fd, &info);
    if (info.st_size > 0) {
      void* map = ::mmap(nullptr, std::size_t(info.st_size), PROT_READ, MAP_SHARED, fd, 0);
      if (map != MAP_FAILED) {
        std::vector<unsigned char> in_core(std::size_t((info.st_size + page - 1) / page));
        if (::mincore(map, std::size_t(info.st_size), in_core.data()) == 0) {
          for (unsigned char c : in_core) resident += c & 1;
          total += double(in_core.size());
        }
        ::munmap(map, std::size_t(info.st_size));
      }
    }
    ::close(fd);
  }
  return total > 0 ? resident / total : 0.0;
}

/// Asks the kernel to drop the files' clean cached pages (advisory; no root needed).
void evict(const std::vector<std::string>& paths) {
  for (const std::string& path : paths) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

/// One way to load every slide; returns the sum of all values (so nothing is optimised away).
struct Method {
  const char* name;
  std::vector<std::string> files;  ///< What it reads, for residency and eviction.
  std::function<double()> run;
};

}  // namespace

int cmd_bench_load(const Tokens& tokens) {
  if (!tokens.empty() && tokens[0] == "--help") {
    std::fputs(kHelp, stdout);
    std::fputs(kDatasetOptionsHelp, stdout);
    std::fputs(
        "\nexample:\n  mhim synth --benchmark camelyon-r50 --out data/c16 --scale 0.25 && mhim "
        "pack --root data/c16\n"
        "  mhim bench load --root data/c16 --labels label_c16.csv --repeats 5\n",
        stdout);
    return 0;
  }
  DatasetSpec spec;
  std::string cache_path;
  int repeats = 5;
  bool evicting = false;
  try {
    std::vector<std::string> names = dataset_option_names();
    names.insert(names.end(), {"cache", "repeats", "threads"});
    const Args args(tokens, names, {"evict"});
    if (!args.positional().empty())
      throw UsageError("unexpected argument '" + args.positional()[0] + "'");
    spec = dataset_from_args(args);
    cache_path = args.get("cache", (fs::path(spec.root) / kPackedCacheName).string());
    repeats = args.get_int("repeats", repeats);
    if (repeats < 1) throw UsageError("--repeats must be >= 1");
    evicting = args.has("evict");
    configure_threads(args.get_int("threads", 1), 1);
  } catch (const UsageError& e) {
    return usage_failure("bench", e.what());
  }
  const auto cache = PackedCache::open(cache_path);
  const std::vector<PackedSlide>& slides = cache->slides();
  const fs::path pt_dir = fs::path(spec.root) / "pt_files";
  std::vector<std::string> pt_files;
  double values = 0;
  std::uint64_t largest = 0, pt_bytes = 0, cache_bytes = 0;
  for (const PackedSlide& s : slides) {
    const fs::path pt = pt_dir / (s.id + ".pt");
    if (!fs::exists(pt))
      throw std::runtime_error("bench load compares against " + pt.string() + ", which is missing");
    pt_files.push_back(pt.string());
    pt_bytes += fs::file_size(pt);
    cache_bytes += s.bytes;
    values += double(s.instances) * cache->feature_dim();
    largest = std::max(largest, s.bytes);
  }
  const double gigabytes = values * 4 / 1e9;
  const bool half = cache->dtype() == "f16";

  std::vector<Method> methods;
  methods.push_back({"cache", {cache_path}, [&] {
                       const auto c = PackedCache::open(cache_path);
                       double sum = 0;
                       for (std::size_t i = 0; i < c->slides().size(); ++i)
                         sum += c->features(i).sum().item<double>();
                       return sum;
                     }});
  methods.push_back(
      {"read()", {cache_path}, [&] {
         const int fd = ::open(cache_path.c_str(), O_RDONLY | O_CLOEXEC);
         if (fd < 0) throw std::runtime_error("cannot open " + cache_path);
         std::vector<std::uint8_t> buffer(largest + 64);
         void* aligned =
             buffer.data() + (64 - reinterpret_cast<std::uintptr_t>(buffer.data()) % 64) % 64;
         double sum = 0;
         for (const PackedSlide& s : slides) {
           std::uint64_t done = 0;
           while (done < s.bytes) {
             const ssize_t n = ::pread(fd, static_cast<char*>(aligned) + done, s.bytes - done,
                                       off_t(s.offset + done));
             if (n <= 0) throw std::runtime_error("read error in " + cache_path);
             done += std::uint64_t(n);
           }
           const at::Tensor t = at::from_blob(aligned, {s.instances, cache->feature_dim()},
                                              half ? at::kHalf : at::kFloat);
           sum += (half ? t.to(at::kFloat) : t).sum().item<double>();
         }
         ::close(fd);
         return sum;
       }});
  methods.push_back({".pt", pt_files, [&] {
                       double sum = 0;
                       for (const std::string& path : pt_files)
                         sum += read_feature_file(path).sum().item<double>();
                       return sum;
                     }});

  std::printf(
      "bench load: %zu slides, %.0f values (%.3f GB as float32); cache %s (%s, %.3f GB stored), "
      ".pt files %.3f GB; %d repeat(s), %d thread(s)\n",
      slides.size(), values, gigabytes, cache_path.c_str(), cache->dtype().c_str(),
      double(cache_bytes) / 1e9, double(pt_bytes) / 1e9, repeats, at::get_num_threads());
  std::printf("%s\n\n",
              evicting ? "mode: eviction requested before every timed run (posix_fadvise DONTNEED)"
                       : "mode: WARM page cache (one untimed pass first; nothing is dropped)");
  std::printf("%-8s %10s %10s %10s %24s\n", "method", "median s", "GB/s", "min GB/s",
              "resident before runs");
  std::fflush(stdout);
  std::vector<double> medians;
  double reference_sum = 0;
  for (std::size_t m = 0; m < methods.size(); ++m) {
    Method& method = methods[m];
    const double sum = method.run();  // untimed: warms the page cache (and checks the three agree)
    if (m == 0) reference_sum = sum;
    if (std::abs(sum - reference_sum) > 1e-6 * std::max(1.0, std::abs(reference_sum)) && !half) {
      std::fprintf(stderr, "warning: %s summed to %.9g, the cache to %.9g\n", method.name, sum,
                   reference_sum);
    }
    std::vector<double> seconds, residency;
    for (int r = 0; r < repeats; ++r) {
      if (evicting) evict(method.files);
      residency.push_back(resident_share(method.files));
      const auto start = std::chrono::steady_clock::now();
      method.run();
      seconds.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    const double t = median(seconds);
    medians.push_back(t);
    char resident[48];
    std::snprintf(resident, sizeof resident, "%.0f%% (min %.0f%%)", 100 * median(residency),
                  100 * *std::min_element(residency.begin(), residency.end()));
    std::printf("%-8s %10.4f %10.2f %10.2f %24s\n", method.name, t, gigabytes / t,
                gigabytes / *std::max_element(seconds.begin(), seconds.end()), resident);
    std::fflush(stdout);
  }
  std::printf(
      "\ncache vs read(): %.2fx   cache vs .pt: %.2fx   read() vs .pt: %.2fx   (median time "
      "ratios)\n",
      medians[1] / medians[0], medians[2] / medians[0], medians[2] / medians[1]);
  return 0;
}

}  // namespace mil::app
