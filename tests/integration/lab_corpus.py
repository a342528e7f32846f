"""A corpus of HL7 v2 ORU^R01 lab messages for the tests, built here rather than stored: normal
panels, a critical potassium, several OBR groups, a GB18030 patient name, escaped separators,
"\\n" line ends, and malformed messages. Each entry says which ACK code the gateway must answer.

The patients are invented; the national ID below is a made-up number of the right shape."""

NATIONAL_ID = "110101199003074522"  # born 1990-03-07, a woman (sequence digit even), valid check digit


def message(control_id, obx, *, patient="PAT-1001", national_id=NATIONAL_ID, name="Wang^Fang",
            version="2.5.1", charset="", placer="PL-1", filler=None, sep="\r", service="LYTES^Electrolytes",
            observed="20261122083000", orders=None, sending_app="LIS"):
    """One ORU^R01 as bytes (UTF-8 unless `charset` names GB18030). `obx` is a list of
    (type, code^text^system, value, units, range, flags) tuples; `orders` overrides the single
    OBR group with [(service, filler, obx_list), ...]."""
    filler = filler or f"F-{control_id}"
    pid3 = f"{patient}^^^CLINIC^MR" + (f"~{national_id}^^^CHN^NNCHN" if national_id else "")
    segments = [
        f"MSH|^~\\&|{sending_app}|CLINIC-A1|RDG|COUNTY-A|{observed}||ORU^R01^ORU_R01|{control_id}|P|{version}"
        + (f"||||||{charset}" if charset else ""),
        f"PID|1||{pid3}||{name}||19900307|F",
        "PV1|1|O|LAB^^^CLINIC-A1||||||||||||||||V-77",
    ]
    for i, (svc, fill, obxs) in enumerate(orders or [(service, filler, obx)], start=1):
        segments.append(f"ORC|RE|{placer}-{i}|{fill}")
        segments.append(f"OBR|{i}|{placer}-{i}|{fill}|{svc}|||{observed}|||||||||||||||||F")
        for j, (vtype, code, value, units, rng, flags) in enumerate(obxs, start=1):
            segments.append(f"OBX|{j}|{vtype}|{code}||{value}|{units}|{rng}|{flags}|||F|||{observed}")
    text = sep.join(segments) + sep
    return text.encode("gb18030") if "18030" in charset else text.encode("utf-8")


NORMAL_PANEL = [
    ("NM", "2823-3^Potassium^LN", "4.1", "mmol/L", "3.5-5.3", "N"),
    ("NM", "2951-2^Sodium^LN", "140", "mmol/L", "137-147", "N"),
    ("NM", "2075-0^Chloride^LN", "101", "mmol/L", "99-110", ""),
]

CRITICAL_POTASSIUM = [
    ("NM", "2823-3^Potassium^LN", "6.8", "mmol/L", "3.5-5.3", "HH"),
    ("NM", "2951-2^Sodium^LN", "138", "mmol/L", "137-147", "N"),
]

# A Chinese name whose GB18030 bytes contain '|' and '\\' as trail bytes (亿 and 乗 are
# written with 0x7C and 0x5C): a parser that splits before converting would break it.
GB18030_NAME = "张^億乗"


def corpus():
    """(name, bytes, expected ACK code) for every case; AA cases are stored, the rest are not."""
    escaped = [("ST", "8251-1^Comment^LN", "A\\F\\B\\S\\C\\T\\D\\R\\E\\E\\", "", "", "")]
    multi = [
        ("CBC^Blood count", "F-MULTI-1", [("NM", "718-7^Haemoglobin^LN", "132", "g/L", "115-150", "N")]),
        ("LYTES^Electrolytes", "F-MULTI-2", NORMAL_PANEL),
        ("GLU^Glucose", "F-MULTI-3", [("NM", "2345-7^Glucose^LN", "5.2", "mmol/L", "3.9-6.1", "N")]),
    ]
    good = message("MSG-NORMAL", NORMAL_PANEL)
    return [
        ("normal_panel", good, "AA"),
        ("critical_potassium", message("MSG-CRIT", CRITICAL_POTASSIUM, patient="PAT-2002",
                                       national_id=""), "AA"),
        ("multi_obr", message("MSG-MULTI", [], orders=multi), "AA"),
        ("gb18030_name", message("MSG-GB", NORMAL_PANEL, name=GB18030_NAME,
                                 charset="GB 18030-2000"), "AA"),
        ("escaped_separators", message("MSG-ESC", escaped), "AA"),
        ("lf_line_ends", message("MSG-LF", NORMAL_PANEL, sep="\n"), "AA"),
        ("missing_msh", good.split(b"\r", 1)[1], "AR"),
        ("wrong_field_separator", good.replace(b"MSH|^~\\&|", b"MSH^|~\\&^", 1), "AR"),
        ("obx_before_obr", _obx_before_obr(), "AE"),
        ("truncated_segment", _truncated(), "AE"),
    ]


def _obx_before_obr():
    lines = message("MSG-ORDER", NORMAL_PANEL).split(b"\r")
    obr = next(i for i, l in enumerate(lines) if l.startswith(b"OBR"))
    lines.insert(obr, lines.pop(obr + 1))  # the first OBX moves in front of its OBR
    return b"\r".join(lines)


def _truncated():
    """Cut off in the middle of the last segment's name, as a dropped connection leaves it."""
    full = message("MSG-TRUNC", NORMAL_PANEL)
    return full[:full.rindex(b"\rOBX") + 3]


def mllp(*messages):
    """Messages as an MLLP stream (0x0B ... 0x1C 0x0D), as lab middleware sends them."""
    return b"".join(b"\x0b" + m + b"\x1c\x0d" for m in messages)
