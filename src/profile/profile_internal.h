/* Internal to src/profile: shared between the catalog and the reports. */
#ifndef ET_PROFILE_INTERNAL_H
#define ET_PROFILE_INTERNAL_H

#include "edgetrain/profile.h"

#include <jansson.h>

/* One target as a JSON object (the element of et_targets_to_json's list). */
json_t *et_target_json_internal(const et_target *t);

#endif
