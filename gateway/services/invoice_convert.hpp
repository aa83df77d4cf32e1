// Translation between billing.v1 plans/invoices and the model's exact types.
// Every decimal on the wire is parsed exactly (model/money); a value that
// needs more digits than its scale is refused, never rounded.
#pragma once

#include "billing/v1/invoice.pb.h"
#include "model/invoice.hpp"
#include "model/pricing.hpp"
#include "model/status.hpp"

namespace billing::gateway {

// invalid_argument naming the field for anything that is not exact: missing
// effective_from, unknown dimension, bad decimals, tier bounds that are not a
// whole number of base units, negative or unrepresentable seed rates.
result<model::plan_version> to_plan_version(const v1::PlanVersion& wire);
v1::PlanVersion to_proto(const model::plan_version& version);
v1::Invoice to_proto(const model::invoice& bill);

}  // namespace billing::gateway
