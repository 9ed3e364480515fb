#include "mil/mhim/aggregator.h"

#include <stdexcept>

#include <nlohmann/json.hpp>

#include "mil/core/specs.h"
#include "mil/mhim/attention_aggregator.h"
#include "mil/mhim/dsmil_aggregator.h"
#include "mil/mhim/selfattn_aggregator.h"

namespace mil {

std::shared_ptr<MhimAggregatorImpl> make_mhim_aggregator(const std::string& name, int64_t dim,
                                                         int64_t class_count,
                                                         const nlohmann::json& options) {
  if (name == "attn") {
    require_known_keys(options, {"da_act"}, "mhim aggregator 'attn' options");
    MhimAttentionOptions o(dim);
    if (options.contains("da_act")) o.activation(options.at("da_act").get<std::string>());
    return std::make_shared<MhimAttentionImpl>(o);
  }
  if (name == "dsmil") {
    require_known_keys(options, {}, "mhim aggregator 'dsmil' options");
    return std::make_shared<MhimDsmilImpl>(MhimDsmilOptions(dim, class_count));
  }
  if (name == "selfattn") {
    require_known_keys(options, {"n_heads"}, "mhim aggregator 'selfattn' options");
    MhimSelfAttentionOptions o(dim);
    if (options.contains("n_heads")) o.heads(options.at("n_heads").get<int64_t>());
    return std::make_shared<MhimSelfAttentionImpl>(o);
  }
  throw std::runtime_error("unknown MHIM baseline aggregator '" + name +
                           "' (available: attn, selfattn, dsmil)");
}

}  // namespace mil
