// What the index's contract tests and the SQLite store's own tests build their data from.
#pragma once

#include <string>

#include <gtest/gtest.h>

#include "absl/time/time.h"
#include "storage/index_store.h"

namespace rdg::storage::contract {

inline const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

//! One CT object of `institution`'s study `study`, as ingest hands it to CommitObjects.
inline NewObject MakeObject(const std::string& institution, const std::string& study,
                            const std::string& sop, const std::string& sha, int64_t size = 100) {
  NewObject n;
  n.exam.origin_institution = institution;
  n.exam.study_instance_uid = study;
  n.exam.patient.patient_id = "P1";
  n.exam.exam_type = "CT";
  n.exam.modalities = {"CT"};
  n.exam.priority = Priority::kRoutine;
  n.object.origin_institution = institution;
  n.object.sop_instance_uid = sop;
  n.object.series_instance_uid = study + ".1";
  n.object.modality = "CT";
  n.object.size = size;
  n.object.sha256_hex = sha;
  n.object.received_at = kT0;
  n.actor = "tester";
  return n;
}

//! An upload session of `institution` created at `at`.
inline UploadSessionRecord Session(const std::string& id, const std::string& institution,
                                   absl::Time at) {
  return UploadSessionRecord{
      id, institution, "u", ObjectKind::kDicom, 100, "sha-" + id, Priority::kRoutine, "", at, at};
}

//! An exam routed to `queue` with the given due time and priority; returns its id.
inline std::string AddRoutedExam(IndexStore& store, const std::string& study,
                                 const std::string& queue, absl::Time due, Priority priority,
                                 const std::string& type = "CT") {
  NewObject n = MakeObject("c1", study, study + ".1", "sha" + study);
  n.exam.exam_type = type;
  n.routing = {queue, priority, due, absl::InfiniteFuture(), "rule test"};
  auto r = store.CommitObjects({n});
  EXPECT_TRUE(r[0].ok()) << r[0].status();
  return r[0]->exam_id;
}

}  // namespace rdg::storage::contract
