-- RDG index, version 10: an HL7 message re-sent with other line ends or MLLP framing is the same
-- message. content_key is the SHA-256 of its segments joined by CR (formats::CanonicalHl7); two
-- objects with the same identity and content key are one (an idempotent re-send), whatever their
-- bytes. Empty for DICOM objects, whose bytes are their identity.
ALTER TABLE objects ADD COLUMN content_key TEXT NOT NULL DEFAULT '';
