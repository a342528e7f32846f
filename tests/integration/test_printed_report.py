"""The printed report with the real binaries: a CT of 张三 written in GB18030 is read and signed
with a critical result; the clinic's `rdg-clinic report` writes report.pdf beside the signed files,
and poppler's pdftotext finds the patient's Chinese name, the impression, the reader, the reading
institution and the verified signature in China Standard Time; `reports --unacknowledged` shows
the critical report until it is acknowledged."""
import datetime
import os
import re
import shutil
import subprocess
import unittest

import pydicom
from pydicom.uid import generate_uid

import harness

CT_SMALL = os.path.join(harness.PYDICOM_FILES, "CT_small.dcm")


def pdftotext(path):
    proc = subprocess.run(["pdftotext", "-layout", path, "-"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


class PrintedReportTest(harness.GatewayTestCase):

    def setUp(self):
        super().setUp()
        self.a1 = self.clinic("clinic-a1")
        self.a1.env["TZ"] = "Asia/Shanghai"
        self.rad = self.reader("reader-a-rad")

    def zhang_san_ct(self):
        ds = pydicom.dcmread(CT_SMALL)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SpecificCharacterSet = "GB18030"
        ds.PatientName, ds.PatientID, ds.PatientSex = "张^三", "HB-0042", "M"
        ds.PatientBirthDate, ds.StudyDate = "19810314", "20261129"
        ds.StudyDescription = "胸部CT平扫"
        path = harness.write_dicom(ds, os.path.join(self.workdir, "zhang_san.dcm"))
        return self.a1.json("upload", "--priority", "STAT", path)["exams"][0]["exam_id"]

    def test_pdf_report_names_patient_impression_reader_and_signature(self):
        exam = self.zhang_san_ct()
        self.assertEqual(self.rad.run("claim", exam).returncode, 0)
        proc = self.rad.run("report", exam, "--final", "--critical",
                            "--findings", "右肺下叶见一枚 8 mm 实性结节。",
                            "--impression", "右肺下叶结节，建议 3 个月后复查。")
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)

        pending = self.a1.run("reports", "--unacknowledged")
        self.assertEqual(pending.returncode, 0, pending.stderr)
        row = next(line for line in pending.stdout.splitlines() if exam in line)
        self.assertIn("张三", row)
        self.assertIn("CRITICAL", row)
        self.assertIn("Qingshui County People's Hospital", row)

        out = os.path.join(self.workdir, "printed")
        result = self.a1.json("report", exam, "--out", out)
        self.assertTrue(result["verified"], result)
        self.assertEqual(result["pdf"], os.path.join(out, "report.pdf"))
        text = pdftotext(result["pdf"])
        shutil.copy(result["pdf"], os.path.join(self.workdir, "kept.pdf"))  # kept on failure
        for expected in ("示范省远程诊断平台", "诊断报告单", "Qingshui County People's Hospital",
                         "张三", "HB-0042", "45岁", "胸部CT平扫", "Shuangqiao Township Health Centre",
                         "右肺下叶见一枚 8 mm 实性结节。", "右肺下叶结节，建议 3 个月后复查。",
                         "reader-a-rad", "正式报告 FINAL", "已验证", "危急值", " CST"):
            self.assertIn(expected, text)
        # The fingerprint printed is the one openssl computes for the signer certificate.
        fingerprint = subprocess.run(
            ["openssl", "x509", "-in", os.path.join(out, "signer.pem"), "-noout", "-fingerprint",
             "-sha256"], capture_output=True, text=True).stdout.strip().split("=", 1)[1]
        self.assertIn(fingerprint, re.sub(r"\s", "", text))  # however the line wraps
        # The signing time in China Standard Time: the signed UTC time + 8 h.
        signed = re.search(r"签名时间 (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) CST", text)
        self.assertIsNotNone(signed, text)
        with open(os.path.join(out, "report.txt")) as f:
            utc = re.search(r"^signed_at: (\S+)Z$", f.read(), re.M).group(1)
        expected = datetime.datetime.fromisoformat(utc) + datetime.timedelta(hours=8)
        self.assertEqual(signed.group(1), expected.strftime("%Y-%m-%d %H:%M:%S"))

        self.assertEqual(self.a1.run("ack", exam).returncode, 0)
        pending = self.a1.run("reports", "--unacknowledged")
        self.assertNotIn(exam, pending.stdout)
        self.assertIn("no report waits for acknowledgement", pending.stdout)

    def test_pdf_of_a_report_from_an_untrusted_signer_says_not_verified(self):
        exam = self.zhang_san_ct()
        self.assertEqual(self.rad.run("claim", exam).returncode, 0)
        proc = self.rad.run("report", exam, "--final", "--impression", "未见异常。")
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        # A clinic whose trust store is another CA cannot verify the signer: the PDF says so.
        other_ca = os.path.join(self.workdir, "other-ca.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                        os.path.join(self.workdir, "other-ca.key"), "-out", other_ca, "-days",
                        "1", "-subj", "/CN=Other CA"], check=True, capture_output=True)
        out = os.path.join(self.workdir, "unverified")
        proc = self.a1.run("report", exam, "--out", out, "--verify-ca", other_ca)
        self.assertNotEqual(proc.returncode, 0)
        text = pdftotext(os.path.join(out, "report.pdf"))
        self.assertIn("未通过验证", text)
        self.assertIn("未见异常。", text)


if __name__ == "__main__":
    unittest.main()
