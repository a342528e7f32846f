"""Bounded memory (issue 12): uploads that drove the gateway to 289 MB – 2 GB resident before — one
million and four million tiny elements, a 96 MB ECG waveform, a 2 GB object — keep the gateway's
peak resident memory (VmHWM from /proc) under 100 MB, and its resident memory afterwards near
where it started. Parsing happens in rdg-parser processes and bytes stream to disk a chunk at a
time. Checked on the normal build only: AddressSanitizer's shadow memory has its own size."""
import os
import struct
import unittest

import pydicom

import harness
import hostile_corpus

RSS_LIMIT_BYTES = 100 << 20


def big_ecg(path, uid="1.2.826.0.1.3680043.8.498.700.1"):
    """pydicom's 12-lead ECG with a rhythm group of 12 × 4,000,000 16-bit samples (96 MB)."""
    ds = pydicom.dcmread(os.path.join(harness.PYDICOM_FILES, "waveform_ecg.dcm"))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
    group = ds.WaveformSequence[0]
    group.NumberOfWaveformSamples = 4_000_000
    group.WaveformData = bytes(12 * 4_000_000 * 2)
    ds.WaveformSequence = pydicom.Sequence([group])
    ds.save_as(path, write_like_original=False)
    return path


def two_gigabyte_object(path, size=(2 << 30) - 4096):
    """A Secondary Capture object of `size` bytes, nearly all of it one Pixel Data value (a sparse
    file: it costs no disk here, but every byte travels and is stored)."""
    uid = "1.2.826.0.1.3680043.8.498.700.2"
    head = hostile_corpus.part10(hostile_corpus.minimal_dataset(uid), uid)
    value = size - len(head) - 12
    value -= value % 2
    with open(path, "wb") as f:
        f.write(head + struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, value))
        f.truncate(len(head) + 12 + value)
    return path


@unittest.skipIf(os.environ.get("RDG_SANITIZE"), "memory figures are for the normal build")
class MemoryTest(harness.GatewayTestCase):

    extra_config = "housekeeping_seconds: 1\n"  # the sweep that also trims the heap

    def test_peak_resident_memory_stays_under_100_mb(self):
        # What was seen: a 10 MB file of one million tiny elements drove the gateway to 289 MB,
        # 40 MB of four million elements further, a 2 GB object to 151-172 MB, and idle RSS
        # stayed high after the uploads.
        pid = self.gateway.proc.pid
        start_rss = harness.proc_status_kb(pid, "VmRSS")
        folder = os.path.join(self.workdir, "objects")
        os.makedirs(folder)
        cases = []
        for count in (1_000_000, 4_000_000):
            uid = f"1.2.826.0.1.3680043.8.498.700.{count}"
            path = os.path.join(folder, f"elements_{count}.dcm")
            with open(path, "wb") as f:
                f.write(hostile_corpus.part10(hostile_corpus.minimal_dataset(uid) +
                                              hostile_corpus.many_elements(count), uid))
            cases.append((f"{count:,} elements", path))
        cases.append(("96 MB ECG", big_ecg(os.path.join(folder, "ecg_96mb.dcm"))))
        cases.append(("2 GB object", two_gigabyte_object(os.path.join(folder, "object_2gb.dcm"))))
        clinic = self.clinic("clinic-a1")
        print()
        for name, path in cases:
            proc = clinic.run("--json", "upload", path, timeout=600)
            self.assert_gateway_alive()
            self.assertEqual(self.gateway.proc.pid, pid)
            peak = harness.proc_status_kb(pid, "VmHWM") * 1024
            print(f"  {name:16} {os.path.getsize(path) / 2**20:8.1f} MiB  exit {proc.returncode}  "
                  f"gateway peak RSS {peak / 2**20:.1f} MiB")
            self.assertLess(peak, RSS_LIMIT_BYTES, name)
        # The 2 GB object and the ECG were stored; the element floods refused by the limit.
        self.assertEqual(self.gateway.query("SELECT COUNT(*) FROM objects"), [(2,)])
        # Idle again: resident memory returns near where it started (within 16 MiB).
        def settled():
            rss = harness.proc_status_kb(pid, "VmRSS")
            return rss if rss - start_rss < 16 * 1024 else None
        try:
            end_rss = harness.wait_for(settled, timeout=30, interval=0.5, what="idle RSS")
        finally:
            print(f"  resident at start {start_rss / 1024:.1f} MiB, "
                  f"idle after {harness.proc_status_kb(pid, 'VmRSS') / 1024:.1f} MiB")
        self.assertLess(end_rss - start_rss, 16 * 1024)

    def test_four_96_mb_ecgs_in_parallel(self):
        # What was seen: a 96 MB ECG waveform peaked the gateway at 362 MB, four in parallel at
        # 992 MB.
        pid = self.gateway.proc.pid
        folder = os.path.join(self.workdir, "ecgs")
        os.makedirs(folder)
        for i in range(4):
            big_ecg(os.path.join(folder, f"ecg_{i}.dcm"), f"1.2.826.0.1.3680043.8.498.701.{i}")
        out = self.clinic("clinic-a1").json("upload", folder, "--parallel", "4", timeout=600)
        peak = harness.proc_status_kb(pid, "VmHWM") * 1024
        print(f"\n  four 96 MB ECGs at once: {sum(f['ok'] for f in out['files'])} stored, "
              f"gateway peak RSS {peak / 2**20:.1f} MiB")
        self.assertTrue(all(f["ok"] for f in out["files"]), out)
        self.assertEqual(self.gateway.proc.pid, pid)
        self.assertLess(peak, RSS_LIMIT_BYTES)
