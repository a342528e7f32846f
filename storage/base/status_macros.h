// Early-return helpers for absl::Status / absl::StatusOr (Abseil 20220623 ships none).
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define RDG_CONCAT_INNER_(a, b) a##b
#define RDG_CONCAT_(a, b) RDG_CONCAT_INNER_(a, b)
#define RDG_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(*tmp)

//! `RDG_ASSIGN_OR_RETURN(auto x, F());` — returns F()'s error, else binds its value.
#define RDG_ASSIGN_OR_RETURN(lhs, expr) \
  RDG_ASSIGN_OR_RETURN_IMPL_(RDG_CONCAT_(rdg_status_or_, __LINE__), lhs, expr)

//! Returns the status if it is not OK.
#define RDG_RETURN_IF_ERROR(expr)                          \
  do {                                                     \
    if (auto rdg_s_ = (expr); !rdg_s_.ok()) return rdg_s_; \
  } while (0)
