// Who and what an ECG recording is of: the patient, recording and device attributes and the
// cart's automatic measurements of a 12-lead ECG object (EcgDetails in ecg_waveform.h).
// Internal to storage/formats: ecg_waveform.cc calls it after decoding the samples.
#pragma once

#include <dcmtk/config/osconfig.h>  // must come first
#include <dcmtk/dcmdata/dcdatset.h>

#include "storage/formats/ecg_waveform.h"

namespace rdg::formats {

//! Fills `recording.details` from `ds`. Never fails: what is absent, unreadable or implausible
//! stays empty; the heart rate falls back to the RR interval, then to EstimateHeartRate on lead
//! II of the drawn group.
void ReadEcgDetails(DcmDataset& ds, EcgRecording& recording);

}  // namespace rdg::formats
