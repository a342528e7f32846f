"""A throwaway county PACS for integration tests: Debian's Orthanc (/usr/sbin/Orthanc) on
loopback ports, with its storage and index in a temporary directory under the test's workdir.

The peer can be stopped or killed and started again on the same ports and storage (a PACS that
was down and comes back with what it had). REST helpers use urllib only. Orthanc 1.10 has no
bind-address option: its DICOM and HTTP servers listen on every interface (RemoteAccessAllowed
false makes the HTTP server refuse non-loopback clients); tests only ever connect to 127.0.0.1.

Run as a script for a self-check (needs DCMTK's storescu and pydicom).
"""
import io
import json
import os
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request

from harness import PYDICOM_FILES, wait_for, without_trailing_padding
from pg_cluster import _free_port

ORTHANC = "/usr/sbin/Orthanc"


def dataset_bytes(part10_bytes):
    """The bytes of a Part 10 file after its File Meta Information group (what a C-STORE
    carries), the end of the group as pydicom reads it (checked against its group length)."""
    from pydicom.filereader import _read_file_meta_info, read_preamble
    fp = io.BytesIO(part10_bytes)
    read_preamble(fp, False)  # raises InvalidDicomError without preamble and DICM
    meta = _read_file_meta_info(fp)
    if "FileMetaInformationGroupLength" in meta and \
            fp.tell() != 144 + meta.FileMetaInformationGroupLength:
        raise ValueError("File Meta Information Group Length does not match the group")
    return part10_bytes[fp.tell():]


class OrthancPeer:
    """One Orthanc process as a PACS with AE title `ae_title`; restartable on the same ports
    and storage."""

    def __init__(self, workdir, ae_title="COUNTY_PACS"):
        self.workdir = workdir
        self.ae_title = ae_title
        self.dir = tempfile.mkdtemp(prefix="orthanc-", dir=workdir)
        self.config_path = os.path.join(self.dir, "orthanc.json")
        self.log_path = os.path.join(workdir, "orthanc.log")
        self.dicom_port = self.http_port = None
        self.proc = None
        # More configuration (plugins, DICOMweb servers), merged over the defaults at start.
        self.extra_config = {}

    @property
    def url(self):
        return f"http://127.0.0.1:{self.http_port}"

    def _write_config(self):
        config = {
            "Name": self.ae_title, "StorageDirectory": os.path.join(self.dir, "storage"),
            "IndexDirectory": os.path.join(self.dir, "index"), "StorageCompression": False,
            "Plugins": [], "DicomServerEnabled": True, "DicomAet": self.ae_title,
            "DicomPort": self.dicom_port, "DicomCheckCalledAet": True,
            "DicomAlwaysAllowStore": True, "DicomAlwaysAllowEcho": True,
            "HttpServerEnabled": True, "HttpPort": self.http_port, "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False, "OrthancExplorerEnabled": False,
            "SaveJobs": False,
        }
        config.update(self.extra_config)
        with open(self.config_path, "w") as f:
            json.dump(config, f, indent=2)

    def start(self, timeout=30.0):
        """Starts (or restarts, on the same ports and storage) Orthanc and waits until its REST
        API answers. On a first start that fails (e.g. a port taken meanwhile by another
        process), tries once more with new ports."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("Orthanc is already running")
        first = self.dicom_port is None
        for attempt in range(2 if first else 1):
            if first:
                self.dicom_port, self.http_port = _free_port(), _free_port()
                while self.http_port == self.dicom_port:
                    self.http_port = _free_port()
            self._write_config()
            with open(self.log_path, "a") as log:
                self.proc = subprocess.Popen([ORTHANC, self.config_path], stdout=log,
                                             stderr=subprocess.STDOUT, cwd=self.dir)
            try:
                wait_for(self._answers, timeout, interval=0.05, what="Orthanc's REST API")
                return self
            except RuntimeError:
                self.proc = None
                if attempt == (1 if first else 0):
                    raise
        return self

    def _answers(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"Orthanc exited with {self.proc.returncode}; log tail:\n"
                               f"{self.log()[-3000:]}")
        try:
            return self._get("/system").get("DicomAet") == self.ae_title
        except OSError:  # refused, reset, or not yet an HTTP answer
            return False

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Sends `sig` and waits for the exit (SIGKILL after `timeout`); returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code, self.proc = self.proc.returncode, None
        return code

    def kill(self):
        return self.stop(signal.SIGKILL)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    # REST helpers.

    def _request(self, path, body=None):
        data = None if body is None else (body if isinstance(body, bytes) else
                                          json.dumps(body).encode())
        with urllib.request.urlopen(urllib.request.Request(self.url + path, data=data),
                                    timeout=30) as r:
            return r.read()

    def _get(self, path, body=None):
        return json.loads(self._request(path, body))

    def post(self, path, body):
        """POSTs `body` (JSON) to the REST API; its JSON answer. An HTTP error raises with
        Orthanc's explanation."""
        try:
            return self._get(path, body)
        except urllib.error.HTTPError as e:
            raise AssertionError(f"Orthanc {path}: {e.code} {e.read().decode(errors='replace')}")

    def _lookup(self, uid, kind):
        """Orthanc's identifier of the resource of type `kind` (Study, Instance) with `uid`."""
        for hit in self._get("/tools/lookup", uid.encode()):
            if hit["Type"] == kind:
                return hit["ID"]
        raise KeyError(f"no {kind} {uid} in Orthanc")

    def studies(self):
        """The StudyInstanceUIDs of every study Orthanc holds."""
        return [s["MainDicomTags"]["StudyInstanceUID"] for s in self._get("/studies?expand")]

    def instances_of_study(self, study_uid):
        """One dict per instance of the study: SOPInstanceUID, SOPClassUID, Modality,
        SeriesInstanceUID."""
        study = self._lookup(study_uid, "Study")
        series = {s["ID"]: s["MainDicomTags"] for s in self._get(f"/studies/{study}/series")}
        result = []
        for i in self._get(f"/studies/{study}/instances"):
            tags = series[i["ParentSeries"]]
            result.append({
                "SOPInstanceUID": i["MainDicomTags"]["SOPInstanceUID"],
                "SOPClassUID": self._request(f"/instances/{i['ID']}/metadata/SopClassUid").decode(),
                "Modality": tags.get("Modality", ""),
                "SeriesInstanceUID": tags["SeriesInstanceUID"]})
        return result

    def instance_file(self, sop_instance_uid):
        """The Part 10 file Orthanc stored for that instance, as bytes."""
        return self._request(f"/instances/{self._lookup(sop_instance_uid, 'Instance')}/file")


def _self_check():
    import shutil
    import pydicom
    sent_path = os.path.join(PYDICOM_FILES, "CT_small.dcm")
    sent = pydicom.dcmread(sent_path)
    workdir = tempfile.mkdtemp(prefix="orthanc-peer-check-")
    peer = OrthancPeer(workdir).start()
    try:
        subprocess.run(["storescu", "-aec", peer.ae_title, "127.0.0.1", str(peer.dicom_port),
                        sent_path], check=True, timeout=60)
        assert peer.studies() == [sent.StudyInstanceUID], peer.studies()
        [inst] = peer.instances_of_study(sent.StudyInstanceUID)
        assert inst == {"SOPInstanceUID": sent.SOPInstanceUID, "SOPClassUID": sent.SOPClassUID,
                        "Modality": sent.Modality,
                        "SeriesInstanceUID": sent.SeriesInstanceUID}, inst
        with open(sent_path, "rb") as f:  # storescu drops the Data Set Trailing Padding
            sent_bytes = without_trailing_padding(dataset_bytes(f.read()))
        stored = peer.instance_file(sent.SOPInstanceUID)
        assert dataset_bytes(stored) == sent_bytes, "stored data set differs from the sent one"
        ports = (peer.dicom_port, peer.http_port)
        assert peer.stop() == 0
        peer.start()
        assert (peer.dicom_port, peer.http_port) == ports
        assert peer.studies() == [sent.StudyInstanceUID], peer.studies()
        peer.kill()
        peer.start()
        assert dataset_bytes(peer.instance_file(sent.SOPInstanceUID)) == sent_bytes
    finally:
        peer.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    print("OK")


if __name__ == "__main__":
    _self_check()
