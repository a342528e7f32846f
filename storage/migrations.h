// Schema migrations, embedded from storage/migrations/<backend>/NNNN_name.sql at build time.
#pragma once

#include <vector>
#include "absl/strings/string_view.h"

namespace rdg::storage {

struct Migration {
  int version;
  absl::string_view name;
  absl::string_view sql;
};

//! SQLite migrations in version order.
const std::vector<Migration>& SqliteMigrations();

}  // namespace rdg::storage
