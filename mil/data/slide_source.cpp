#include "mil/data/slide_source.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <stdexcept>

#include "mil/core/sha256.h"
#include "mil/data/feature_io.h"
#include "mil/data/instance_labels.h"
#include "mil/data/packed_cache.h"

namespace mil {
namespace fs = std::filesystem;

SlideSource SlideSource::for_dataset(const DatasetSpec& spec) {
  SlideSource source;
  const fs::path root(spec.root);
  if (spec.features == "packed") {
    source.kind_ = "packed";
    source.location_ = (root / kPackedCacheName).string();
    source.cache_ = PackedCache::open(source.location_);
    return source;
  }
  const fs::path pt = root / "pt_files", h5 = root / "h5_files";
  const bool use_h5 = spec.features == "h5" ||
                      (spec.features == "auto" && !fs::is_directory(pt) && fs::is_directory(h5));
  source.kind_ = use_h5 ? "h5" : "pt";
  source.location_ = (use_h5 ? h5 : pt).string();
  return source;
}

std::string SlideSource::path_of(const std::string& slide) const {
  if (cache_) return location_ + ":" + slide;
  return (fs::path(location_) / (slide + "." + kind_)).string();
}

bool SlideSource::contains(const std::string& slide) const {
  return cache_ ? cache_->find(slide) >= 0 : fs::exists(path_of(slide));
}

std::vector<std::string> SlideSource::slide_ids() const {
  std::vector<std::string> ids;
  if (cache_) {
    for (const PackedSlide& s : cache_->slides()) ids.push_back(s.id);
  } else {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(location_, ec)) {
      if (e.path().extension() == "." + kind_) ids.push_back(e.path().stem().string());
    }
    if (ec) throw std::runtime_error("cannot list '" + location_ + "': " + ec.message());
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

SlideData SlideSource::read(const std::string& slide) const {
  SlideData out;
  if (cache_) {
    const int i = cache_->find(slide);
    if (i < 0)
      throw std::runtime_error("slide '" + slide + "' is not in packed cache '" + location_ + "'");
    const PackedSlide& entry = cache_->slides()[std::size_t(i)];
    out.features = cache_->features(std::size_t(i));
    out.coords = cache_->coords(std::size_t(i));
    out.bytes = entry.bytes;
    out.sha256 = entry.sha256;
    out.source_sha256 = entry.source_sha256;
    return out;
  }
  const std::string path = path_of(slide);
  if (kind_ == "h5") {
    H5Slide h5 = read_h5_slide(path);
    out.features = h5.features;
    out.coords = h5.coords;
    out.bytes = fs::file_size(path);
    out.sha256 = sha256_file(path);
  } else {
    const std::vector<char> bytes = read_file_bytes(path);
    out.bytes = bytes.size();
    out.sha256 = sha256_hex(std::string_view(bytes.data(), bytes.size()));
    out.features = decode_feature_bytes(bytes, path);
  }
  out.source_sha256 = out.sha256;
  out.instance_labels = read_instance_labels(path, out.features.size(0));
  if (out.instance_labels.defined() && kind_ == "pt")
    out.instance_labels_sha256 = sha256_file(instance_labels_sidecar_path(path));
  return out;
}

std::vector<SlideOfRow> match_slides(const std::vector<LabelRow>& rows,
                                     const std::string& slide_match, const SlideSource& source,
                                     std::vector<std::string>& missing, ProblemLog* log) {
  std::vector<SlideOfRow> entries;
  std::vector<std::string> ids;  // for substring lookup: every slide of the source, sorted
  if (slide_match == "substring") ids = source.slide_ids();
  for (const LabelRow& row : rows) {
    if (slide_match == "exact") {
      if (source.contains(row.id)) {
        entries.push_back({&row, row.id});
      } else {
        missing.push_back(source.path_of(row.id) + " (" + row.where + ")");
      }
      continue;
    }
    const std::size_t before = entries.size();
    for (const std::string& id : ids) {
      if (id.find(row.id) != std::string::npos) entries.push_back({&row, id});
    }
    if (entries.size() == before) {
      missing.push_back("no slide in " + source.location() + " contains '" + row.id + "' (" +
                        row.where + ")");
    }
  }
  std::map<std::string, const LabelRow*> owner;
  std::map<std::string, const LabelRow*> case_label;
  std::vector<SlideOfRow> unique;
  for (const SlideOfRow& e : entries) {
    auto [it, inserted] = owner.emplace(e.slide, e.row);
    if (!inserted) {
      report_problem(log, "duplicate_id", e.row->where,
                     "slide '" + e.slide + "' is already listed at " + it->second->where);
      continue;
    }
    auto [c, new_case] = case_label.emplace(e.row->case_id, e.row);
    if (!new_case && c->second->label != e.row->label) {
      report_problem(log, "label_conflict", e.row->where,
                     "case '" + e.row->case_id + "' has label " + std::to_string(e.row->label) +
                         " here and " + std::to_string(c->second->label) + " at " +
                         c->second->where);
      continue;
    }
    unique.push_back(e);
  }
  return unique;
}

bool SlideSource::zero_copy() const { return cache_ && cache_->dtype() == "f32"; }

}  // namespace mil
