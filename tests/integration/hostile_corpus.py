"""Hostile inputs the gateway must refuse without harm, generated as raw bytes (pydicom would
recurse, or refuse to write them). Each entry: name -> bytes. No patient data beyond the
placeholder name TEST^HOSTILE."""
import struct

import harness

CT_SMALL = f"{harness.PYDICOM_FILES}/CT_small.dcm"
UNDEFINED = 0xFFFFFFFF


def element(group, elem, vr, value=b"", length=None):
    """One explicit-VR little-endian element; `length` overrides the value's length (a lie)."""
    if length is None and len(value) % 2:
        value += b"\0" if vr == "UI" else b" "
    n = len(value) if length is None else length
    head = struct.pack("<HH", group, elem) + vr.encode()
    if vr in ("OB", "OW", "SQ", "UN", "UT", "UC", "UR", "OD", "OF", "OL"):
        return head + struct.pack("<HI", 0, n) + value
    return head + struct.pack("<H", n) + value


def item(length=UNDEFINED):
    return struct.pack("<HHI", 0xFFFE, 0xE000, length)


ITEM_END = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
SEQ_END = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)


def sequence_start():
    return element(0x0040, 0xA730, "SQ", length=UNDEFINED)


def minimal_dataset(sop_uid):
    return (element(0x0008, 0x0016, "UI", b"1.2.840.10008.5.1.4.1.1.7") +
            element(0x0008, 0x0018, "UI", sop_uid.encode()) + element(0x0008, 0x0060, "CS", b"OT") +
            element(0x0010, 0x0010, "PN", b"TEST^HOSTILE") + element(0x0010, 0x0020, "LO", b"H1") +
            element(0x0020, 0x000D, "UI", b"1.2.826.0.1.3680043.8.498.2") +
            element(0x0020, 0x000E, "UI", b"1.2.826.0.1.3680043.8.498.3"))


def part10(dataset, sop_uid, syntax=b"1.2.840.10008.1.2.1"):
    meta = (element(0x0002, 0x0001, "OB", b"\0\1") +
            element(0x0002, 0x0002, "UI", b"1.2.840.10008.5.1.4.1.1.7") +
            element(0x0002, 0x0003, "UI", sop_uid.encode()) + element(0x0002, 0x0010, "UI", syntax))
    meta = element(0x0002, 0x0000, "UL", struct.pack("<I", len(meta))) + meta
    return b"\0" * 128 + b"DICM" + meta + dataset


def nested(levels, closed):
    out = (sequence_start() + item()) * levels
    return out + (ITEM_END + SEQ_END) * levels if closed else out


def many_elements(count):
    return b"".join(struct.pack("<HH", 0x0021 + 2 * (i // 0xEFFF), 0x1000 + i % 0xEFFF) +
                    b"SH" + struct.pack("<H", 2) + b"AB" for i in range(count))


def dicom_corpus():
    """name -> bytes of hostile DICOM files (each with its own SOP Instance UID)."""
    def obj(n, body, syntax=b"1.2.840.10008.1.2.1"):
        uid = f"1.2.826.0.1.3680043.8.498.100.{n}"
        return part10(minimal_dataset(uid) + body, uid, syntax)
    ct = harness.read_bytes(CT_SMALL)
    corpus = {
        "nested_unclosed_20000": obj(1, nested(20000, False)),
        "nested_closed_12000": obj(2, nested(12000, True)),
        "declared_4gb_pixel_data": obj(3, element(0x7FE0, 0x0010, "OB", b"x" * 64, 0xFFFFFFF0)),
        "item_longer_than_sequence": obj(4, element(0x0040, 0xA730, "SQ", item(1000) + b"x" * 8, 16)),
        "undefined_items_in_undefined_items_unclosed": obj(5, sequence_start() + item() +
                                                           sequence_start() + item() + ITEM_END),
        "huge_item_count": obj(6, element(0x0040, 0xA730, "SQ", length=UNDEFINED) +
                               item(0) * 600000 + SEQ_END),
        "pixel_fragment_lies": obj(7, element(0x7FE0, 0x0010, "OB", length=UNDEFINED) + item(0) +
                                   item(1 << 30) + b"abcd", b"1.2.840.10008.1.2.4.50"),
        "one_million_elements": obj(8, many_elements(1000000)),
        "stray_item_delimiter": obj(9, ITEM_END),
        "nested_unclosed_5000": obj(10, nested(5000, False)),
        "nested_unclosed_10000": obj(11, nested(10000, False)),
        "jpeg_renamed": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00" + b"\x00" * 2000,
        "png_renamed": b"\x89PNG\r\n\x1a\n" + b"\x00" * 2000,
        "pdf_renamed": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n" * 20,
        "text_renamed": b"Patient referred for chest X-ray\n" * 40,
    }
    # Truncations inside the element headers and values of a real CT, at structural boundaries.
    for cut in (140, 400, 900, 2000, len(ct) - 3):
        corpus[f"ct_truncated_at_{cut}"] = ct[:cut]
    return corpus


def hl7_corpus():
    """name -> bytes of hostile HL7 v2 lab messages."""
    msh = b"MSH|^~\\&|LIS|LAB|RDG|GW|20261129120000||ORU^R01|MSG%d|P|2.5.1\r"
    pid = b"PID|1||H1^^^LAB||TEST^HOSTILE||19700101|M\r"
    obr = b"OBR|1|P1|F1|CHEM^Chemistry|||20261129110000\r"
    obx = b"OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.3|N|||F\r"
    return {
        "hl7_100000_segments": msh % 1 + pid + obr + b"NTE|1||x\r" * 100000,
        "hl7_1mb_field": msh % 2 + pid + obr + b"OBX|1|ST|X^Y^L||" + b"A" * (1 << 20) + b"|||N|||F\r",
        "hl7_broken_escapes": msh % 3 + pid + obr + b"OBX|1|ST|X^Y^L||\\X4\\E\\\\Xzz\\\\H\\|||N|||F\r",
        "hl7_frame_without_end": b"\x0b" + msh % 4 + pid + obr + obx,
        "hl7_no_segments": b"MSH|",
    }
