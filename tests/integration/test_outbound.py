"""Results back into the hospitals' own systems, with the real binaries and real peers: Orthanc
(Debian's) as the county PACS and python3-hl7's MLLP server as the clinic's HIS. After a FINAL
report the PACS holds the study's image (its data set byte for byte as the clinic sent it), the
report as a Basic Text SR (dciodvfy: no errors; dsrdump: findings, impression, the reader by name
as verifying observer) and as an Encapsulated PDF (dciodvfy: no errors); the HIS holds the
ORU^R01 and its AA ACK is recorded. With both down the queue holds the jobs, through a kill -9 of
the gateway, and delivers them when they return; an addendum follows as a second SR and PDF and a
corrected (C) ORU. OutboundTlsTest does it over DICOM TLS and MLLP over TLS, and refuses peers
whose certificates RDG cannot trust."""
import io
import os
import subprocess
import tempfile
import unittest
import urllib.request

import pydicom
from pydicom.uid import generate_uid

import harness
from hl7_listener import Hl7Listener
from orthanc_peer import OrthancPeer

CT_SMALL = os.path.join(harness.PYDICOM_FILES, "CT_small.dcm")
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"


class Admin(harness.Reader):
    program = "rdg-admin"


class OutboundTest(harness.GatewayTestCase):

    pacs_tls = False  # DICOM over TLS to the PACS (OutboundTlsTest)

    def setUp(self):
        # The peers first: the gateway's configuration names their ports.
        self.workdir = tempfile.mkdtemp(prefix="rdg-test-")
        self.pki = harness.make_pki()
        self.pacs = OrthancPeer(self.workdir, ae_title="COUNTY_PACS")
        if self.pacs_tls:
            # The PACS presents a certificate of the platform CA (the dev PKI's gateway.pem
            # names 127.0.0.1) and requires RDG's.
            self.pacs.extra_config = {
                "DicomTlsEnabled": True,
                "DicomTlsCertificate": os.path.join(self.pki, "gateway.pem"),
                "DicomTlsPrivateKey": os.path.join(self.pki, "gateway.key"),
                "DicomTlsTrustedCertificates": os.path.join(self.pki, "ca.pem"),
                "DicomTlsRemoteCertificateRequired": True}
        # Over TLS, the HIS presents the platform CA's gateway.pem (it names 127.0.0.1) and
        # requires RDG's certificate.
        self.his = Hl7Listener(tls=(os.path.join(self.pki, "gateway.pem"),
                                    os.path.join(self.pki, "gateway.key"),
                                    os.path.join(self.pki, "ca.pem")) if self.pacs_tls else None)
        self.pacs.start()
        self.his.start()
        self.gateway = harness.Gateway(self.workdir, self.pki,
                                       "outbound { max_backoff_seconds: 1 timeout_seconds: 5 }\n")
        with open(self.gateway.config_path) as f:
            config = f.read()
        config = config.replace('  id: "county-a"\n', '  id: "county-a"\n' + (
            '  destinations { name: "county-a-pacs" dicom { address: "127.0.0.1:%d" '
            'called_ae: "COUNTY_PACS" calling_ae: "RDG_QINGSHUI"%s } }\n'
            % (self.pacs.dicom_port,
               ' tls: true ca_file: "%s"' % os.path.join(self.pki, "ca.pem")
               if self.pacs_tls else "")), 1)
        config = config.replace('  id: "clinic-a1"\n', '  id: "clinic-a1"\n' + (
            '  destinations { name: "clinic-a1-his" hl7 { address: "127.0.0.1:%d" '
            'receiving_application: "HIS"%s } }\n'
            % (self.his.port,
               ' tls: true ca_file: "%s"' % os.path.join(self.pki, "ca.pem")
               if self.pacs_tls else "")), 1)
        self.assertEqual(config.count("destinations {"), 2, "the demo config's institutions moved")
        with open(self.gateway.config_path, "w") as f:
            f.write(config)
        self.gateway.start()
        self.a1 = self.clinic("clinic-a1")
        self.rad = self.reader("reader-a-rad")
        self.admin = Admin(self.gateway, "admin")

    def tearDown(self):
        self.his.stop()
        self.pacs.stop()
        super().tearDown()

    def zhang_san_ct(self):
        ds = pydicom.dcmread(CT_SMALL)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SpecificCharacterSet = "GB18030"
        ds.PatientName, ds.PatientID, ds.PatientSex = "张^三", "HB-0042", "M"
        ds.PatientBirthDate, ds.StudyDate = "19810314", "20261129"
        ds.AccessionNumber = "A-" + ds.SOPInstanceUID[-8:]
        ds.StudyDescription = "胸部CT平扫"
        path = harness.write_dicom(ds, os.path.join(self.workdir, f"{ds.SOPInstanceUID}.dcm"))
        exam = self.a1.json("upload", path)["exams"][0]["exam_id"]
        return exam, ds, path

    def sign_final(self, exam):
        self.assertEqual(self.rad.run("claim", exam).returncode, 0)
        proc = self.rad.run("report", exam, "--final",
                            "--findings", "右肺下叶见一枚 8 mm 实性结节。",
                            "--impression", "右肺下叶结节，建议 3 个月后复查。")
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)

    def outbound(self, exam):
        return self.admin.json("outbound", "--exam", exam)

    def pacs_instances(self, study, count, timeout=60):
        def arrived():
            try:
                found = self.pacs.instances_of_study(study)
            except KeyError:  # not there yet
                return None
            return found if len(found) >= count else None
        harness.wait_for(arrived, timeout=timeout, interval=0.2,
                         what=f"{count} instances of the study at the PACS")
        return {i["SOPInstanceUID"]: i for i in self.pacs.instances_of_study(study)}

    def check_sr(self, sop_uid, *expected):
        path = os.path.join(self.workdir, f"sr-{sop_uid}.dcm")
        with open(path, "wb") as f:
            f.write(self.pacs.instance_file(sop_uid))
        dump = subprocess.run(["dsrdump", "+Pl", "+Pc", path], capture_output=True, text=True)
        self.assertEqual(dump.returncode, 0, dump.stderr)
        for text in expected:
            self.assertIn(text, dump.stdout)
        check = subprocess.run(["dciodvfy", "-new", path], capture_output=True, text=True)
        errors = [line for line in (check.stdout + check.stderr).splitlines()
                  if line.startswith("Error")]
        self.assertEqual(errors, [], check.stdout + check.stderr)
        return dump.stdout

    def test_a_final_report_reaches_the_county_pacs_and_the_clinics_his(self):
        exam, ds, path = self.zhang_san_ct()
        self.sign_final(exam)

        at_pacs = self.pacs_instances(ds.StudyInstanceUID, 3)
        by_class = {}
        for uid, i in at_pacs.items():
            by_class.setdefault(i["SOPClassUID"], []).append(uid)
        self.assertEqual(sorted(by_class), sorted([ds.SOPClassUID, BASIC_TEXT_SR, ENCAPSULATED_PDF]))
        # The image as the clinic sent it: the same data set, byte for byte.
        sent = harness.without_trailing_padding(harness.dicom_dataset_bytes(harness.read_bytes(path)))
        stored = harness.dicom_dataset_bytes(self.pacs.instance_file(ds.SOPInstanceUID))
        self.assertEqual(harness.without_trailing_padding(stored), sent)
        # The SR: findings, impression, the reader as verifying observer, the patient copied.
        dump = self.check_sr(by_class[BASIC_TEXT_SR][0], "右肺下叶见一枚 8 mm 实性结节。",
                             "右肺下叶结节，建议 3 个月后复查。", "reader-a-rad", "VERIFIED",
                             "COMPLETE", "Qingshui County People's Hospital")
        self.assertIn("张^三", dump)
        self.assertIn("Wang^Jianguo=王^建国", dump)  # the reader by name (institutions.staff)
        # The PDF: the printed report, in the same study.
        pdf = pydicom.dcmread(io.BytesIO(self.pacs.instance_file(by_class[ENCAPSULATED_PDF][0])))
        self.assertEqual(pdf.Modality, "DOC")
        self.assertEqual(pdf.StudyInstanceUID, ds.StudyInstanceUID)
        self.assertTrue(bytes(pdf.EncapsulatedDocument).startswith(b"%PDF"))
        pdf_path = os.path.join(self.workdir, "report-pdf.dcm")
        with open(pdf_path, "wb") as f:
            f.write(self.pacs.instance_file(by_class[ENCAPSULATED_PDF][0]))
        check = subprocess.run(["dciodvfy", "-new", pdf_path], capture_output=True, text=True)
        self.assertEqual([line for line in (check.stdout + check.stderr).splitlines()
                          if line.startswith("Error")], [], check.stdout + check.stderr)

        # The HIS: an ORU^R01 in UTF-8, acknowledged AA, the ACK recorded.
        messages = self.his.wait_messages(1, timeout=60)
        oru = messages[0]
        self.assertIn("ORU^R01", oru)
        self.assertIn("张", oru)
        self.assertIn("右肺下叶结节，建议 3 个月后复查。", oru)
        self.assertRegex(oru, r"\rOBR\|[^\r]*\|F\|")
        self.assertIn("|reader-a-rad&王&建国", oru)  # OBR-32: the interpreter, id and name
        # MSH-10: the job's id and when it was planned; at most 20 characters (v2.5's ST).
        control_id = oru.split("\r")[0].split("|")[9]
        self.assertRegex(control_id, r"^RDG\d+\.[0-9A-Z]+$")
        self.assertLessEqual(len(control_id), 20)
        if self.pacs_tls:  # over TLS, RDG presented the gateway's certificate
            self.assertEqual([s["organizationalUnitName"] for s in self.his.peer_subjects][:1],
                             ["gateway"])

        def all_sent():
            jobs = self.outbound(exam).get("jobs", [])
            return jobs if jobs and all(j["state"] == "sent" for j in jobs) else None
        jobs = harness.wait_for(all_sent, timeout=30, interval=0.2, what="every job sent")
        kinds = sorted((j["destination"], j["kind"]) for j in jobs)
        self.assertEqual(kinds, [("clinic-a1-his", "oru"), ("county-a-pacs", "images"),
                                 ("county-a-pacs", "pdf"), ("county-a-pacs", "sr")])
        oru_job = next(j for j in jobs if j["kind"] == "oru")
        self.assertTrue(oru_job["detail"].startswith("ACK AA"), oru_job)
        summary = {d["name"]: d for d in self.outbound(exam)["destinations"]}
        self.assertEqual(summary["county-a-pacs"]["sent"], "3")
        self.assertEqual(summary["clinic-a1-his"]["system"], "hl7")

        # /metrics: per destination and state.
        req = urllib.request.Request(self.gateway.monitoring_url + "/metrics",
                                     headers={"Authorization": "Bearer " + self.gateway.monitoring_token})
        with urllib.request.urlopen(req, timeout=30) as r:
            metrics = r.read().decode()
        self.assertIn('rdg_outbound_jobs{destination="county-a-pacs",state="sent"} 3', metrics)
        self.assertIn('rdg_outbound_jobs{destination="clinic-a1-his",state="sent"} 1', metrics)

    def test_the_queue_holds_while_both_are_down_through_a_kill_and_delivers_when_they_return(self):
        self.pacs.stop()
        self.his.stop()
        exam, ds, _ = self.zhang_san_ct()
        self.sign_final(exam)

        def tried_and_waiting():
            d = {x["name"]: x for x in self.outbound(exam)["destinations"]}
            return all(d[n].get("last_error") and int(d[n].get("pending", 0)) > 0
                       for n in ("county-a-pacs", "clinic-a1-his"))
        harness.wait_for(tried_and_waiting, timeout=30, interval=0.2,
                         what="both destinations tried and failing")
        self.assertIn("Connection refused",
                      {d["name"]: d for d in self.outbound(exam)["destinations"]}
                      ["clinic-a1-his"]["last_error"])

        self.gateway.kill()
        self.gateway.start()
        self.pacs.start()
        self.his.start()
        self.pacs_instances(ds.StudyInstanceUID, 3)
        self.assertIn("ORU^R01", self.his.wait_messages(1, timeout=60)[0])

        # An addendum: a second SR and PDF (the SR naming its predecessor), a corrected ORU.
        proc = self.rad.run("addendum", exam, "--impression", "补充：左肺上叶另见 4 mm 结节。",
                            "--reason", "首次阅片遗漏")
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        at_pacs = self.pacs_instances(ds.StudyInstanceUID, 5)
        srs = [uid for uid, i in at_pacs.items() if i["SOPClassUID"] == BASIC_TEXT_SR]
        self.assertEqual(len(srs), 2)
        dumps = [self.check_sr(uid) for uid in srs]
        amended = next(d for d in dumps if "补充：左肺上叶另见 4 mm 结节。" in d)
        self.assertIn("首次阅片遗漏", amended)
        corrected = self.his.wait_messages(2, timeout=60)[1]
        self.assertRegex(corrected, r"\rOBR\|[^\r]*\|C\|")

        def all_sent():
            jobs = self.outbound(exam).get("jobs", [])
            return jobs if len(jobs) == 7 and all(j["state"] == "sent" for j in jobs) else None
        harness.wait_for(all_sent, timeout=30, interval=0.2, what="every job sent")
        # Sent once each: the PACS holds no copy twice, the HIS got two messages.
        self.assertEqual(len(self.pacs.instances_of_study(ds.StudyInstanceUID)), 5)
        self.assertEqual(len(self.his.messages), 2)


class OutboundTlsTest(OutboundTest):
    """The same pushes to a PACS that takes DICOM over TLS only and a HIS that takes MLLP over
    TLS only, both requiring RDG's certificate."""
    pacs_tls = True

    # The HIS half and the outage are the same as without TLS: run the PACS path only.
    test_the_queue_holds_while_both_are_down_through_a_kill_and_delivers_when_they_return = None

    def test_a_pacs_certificate_of_another_ca_is_refused(self):
        self.pacs.stop()
        rogue = harness.make_pki("rogue")
        self.pacs.extra_config["DicomTlsCertificate"] = os.path.join(rogue, "gateway.pem")
        self.pacs.extra_config["DicomTlsPrivateKey"] = os.path.join(rogue, "gateway.key")
        self.pacs.start()
        exam, ds, _ = self.zhang_san_ct()
        self.sign_final(exam)

        def refused():
            d = {x["name"]: x for x in self.outbound(exam)["destinations"]}["county-a-pacs"]
            return d if d.get("last_error") else None
        pacs = harness.wait_for(refused, timeout=30, interval=0.2, what="the PACS refused")
        self.assertNotIn("sent", pacs)  # nothing sent to a PACS RDG cannot trust
        self.assertEqual(self.pacs.studies(), [])

    def test_a_his_certificate_of_another_ca_or_name_is_refused(self):
        self.his.stop()
        rogue = harness.make_pki("rogue")
        self.his.tls = (os.path.join(rogue, "gateway.pem"), os.path.join(rogue, "gateway.key"),
                        os.path.join(self.pki, "ca.pem"))
        self.his.start()
        exam, _, _ = self.zhang_san_ct()
        self.sign_final(exam)

        def refused():
            d = {x["name"]: x for x in self.outbound(exam)["destinations"]}["clinic-a1-his"]
            return d if d.get("last_error") else None
        his = harness.wait_for(refused, timeout=30, interval=0.2, what="the HIS refused")
        self.assertIn("TLS handshake failed", his["last_error"])
        self.assertNotIn("sent", his)
        self.assertEqual(self.his.messages, [])  # no patient data to a HIS RDG cannot trust
        self.assertEqual(self.his.peer_subjects, [])


if __name__ == "__main__":
    unittest.main()
