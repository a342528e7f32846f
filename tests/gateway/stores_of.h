// The stores each gateway component takes, all from one IndexStore: a backend or
// storage::MockIndexStore. The gateway itself names each store (gateway/api/gateway.cc).
#pragma once

#include "gateway/api/admin_service.h"
#include "gateway/api/exam_service.h"
#include "gateway/ingest/ingestor.h"
#include "gateway/worklist/index_reading_desk.h"
#include "gateway/worklist/index_report_desk.h"
#include "storage/index_store.h"

namespace rdg::testing {

inline ingest::Ingestor::Stores IngestorStores(storage::IndexStore& i) {
  return {i.sessions(), i.exams(), i.audit(), i.identity_conflicts()};
}

inline worklist::IndexReadingDesk::Stores ReadingDeskStores(storage::IndexStore& i) {
  return {i.worklist(), i.exams(), i.reports(), i.lab_results(), i.audit(), i.identity_conflicts()};
}

inline worklist::IndexReportDesk::Stores ReportDeskStores(storage::IndexStore& i) {
  return {i.reports(), i.exams(), i.audit()};
}

inline api::ExamServiceImpl::Stores ExamServiceStores(storage::IndexStore& i) {
  return {i.exams(), i.audit()};
}

inline api::AdminServiceImpl::Stores AdminServiceStores(storage::IndexStore& i) {
  return {i.exams(),  i.worklist(), i.sla(), i.audit(), i.identity_conflicts(),
          i.backup(), i.outbound()};
}

}  // namespace rdg::testing
