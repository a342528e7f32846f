#include "gateway/config/gateway_config.h"

#include "gateway/config/institution_directory.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace rdg::config {
namespace {

using ::testing::HasSubstr;

constexpr char kMinimal[] = R"pb(
  listen: "127.0.0.1:0"
  data_dir: "/tmp/x"
  tls { ca_file: "ca.pem" cert_file: "gw.pem" key_file: "gw.key" }
  institutions { id: "county-a" level: COUNTY community: "a" }
  institutions { id: "clinic-a1" level: TOWNSHIP community: "a" parent: "county-a" }
  queues { name: "county-a/imaging" institution: "county-a" }
  fallback_queue: "county-a/imaging"
  routing_rules { name: "r" origin_communities: "a" queue: "county-a/imaging" }
)pb";

TEST(ConfigTest, DemoConfigIsValid) {
  auto c = LoadConfigFile(std::string(RDG_SOURCE_DIR) + "/deploy/config/demo.textproto");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_GE(c->institutions_size(), 8);
  EXPECT_FALSE(c->queues().empty());
  EXPECT_FALSE(c->critical_values().empty());
}

TEST(ConfigTest, DefaultsAndOverrides) {
  auto c = ParseConfig(kMinimal, "t", {"0.0.0.0:5000", "/data", ""});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen(), "0.0.0.0:5000");
  EXPECT_EQ(c->data_dir(), "/data");
  EXPECT_EQ(c->index().sqlite().path(), "/data/index.sqlite");
  EXPECT_EQ(c->limits().max_object_bytes(), int64_t{2} << 30);
  EXPECT_EQ(c->limits().max_chunk_bytes(), 4 << 20);
  EXPECT_EQ(c->claims().lease_seconds(), 900);
  EXPECT_EQ(c->shutdown_grace_seconds(), 20);
  EXPECT_EQ(c->parsing().processes(), 2);
  EXPECT_EQ(c->parsing().timeout_seconds(), 30);
  EXPECT_EQ(c->parsing().memory_bytes(), int64_t{1} << 30);
  EXPECT_EQ(c->parsing().max_sequence_depth(), 64);
  EXPECT_EQ(c->parsing().max_elements(), 500000);
  EXPECT_EQ(c->worker_threads(), 16);
  EXPECT_EQ(c->ingest_threads(), 16);
  EXPECT_EQ(c->ingest_nice(), 10);
  auto same = ParseConfig(std::string(kMinimal) + "ingest_nice: 0", "t");
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->ingest_nice(), 0);  // explicitly the readers' priority
}

TEST(ConfigTest, SyntaxErrorNamesLineAndColumn) {
  auto c = ParseConfig("listen: \"a:1\"\n\nbogus_field: 3\n", "gw.textproto");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("gw.textproto:3:"));
  EXPECT_THAT(c.status().message(), HasSubstr("bogus_field"));
}

TEST(ConfigTest, SemanticErrorsNameTheLine) {
  std::string text = std::string(kMinimal) + "\nqueues { name: \"q2\" institution: \"nowhere\" }\n";
  auto c = ParseConfig(text, "gw.textproto");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("gw.textproto:11:"));
  EXPECT_THAT(c.status().message(), HasSubstr("unknown institution \"nowhere\""));
}

TEST(ConfigTest, RejectsBrokenReferencesAndValues) {
  struct Case {
    std::string extra;
    std::string expected;
  } cases[] = {
      {"institutions { id: \"clinic-a1\" level: VILLAGE }", "is repeated"},
      {"institutions { id: \"x\" level: VILLAGE parent: \"nope\" }", "unknown parent"},
      {"institutions { id: \"Bad Id\" level: VILLAGE }", "must be 1-64 characters"},
      {"institutions { id: \"y\" }", "needs a level"},
      {"routing_rules { name: \"r2\" queue: \"missing\" }", "unknown queue"},
      {"routing_rules { name: \"r3\" origin_communities: \"z\" queue: \"county-a/imaging\" }",
       "unknown community"},
      {"sla_policies { exam_type: \"CT\" received_to_final_minutes: -1 }", "must not be negative"},
      {"limits { max_chunk_bytes: 100000000 }", "at most 16 MiB"},
      {"parsing { memory_bytes: 1000000 }", "at least 128 MiB"},
      {"parsing { processes: 100 }", "between 1 and 64"},
      {"ingest_nice: 20", "between 0 (the same priority as readers' calls) and 19"},
      {"parsing { max_sequence_depth: -1 }", "must not be negative"},
      {"critical_values { below: 1 }", "needs a test code"},
      {"time_zone: \"China/Beijing\"", "is not an IANA time zone"},
      {"critical_values { code: \"K\" }", "needs below and/or above"},
      {"critical_values { code: \"K\" below: 7 above: 3 }", "below must be less than above"},
      {"critical_values { code: \"K\" above: 6 } critical_values { code: \"K\" above: 7 }",
       "is repeated"},
      // The institutions' PACS and HIS, and DICOMweb.
      {"institutions { id: \"d1\" level: COUNTY destinations { name: \"Bad Name\" hl7 { "
       "address: \"h:1\" } } }",
       "destination name \"Bad Name\""},
      {"institutions { id: \"d2\" level: COUNTY destinations { name: \"x\" } }",
       "needs dicom { … } or hl7 { … }"},
      {"institutions { id: \"d3\" level: COUNTY destinations { name: \"p\" dicom { address: "
       "\"pacs\" called_ae: \"PACS\" } } }",
       "dicom.address must be host:port"},
      {"institutions { id: \"d4\" level: COUNTY destinations { name: \"p\" dicom { address: "
       "\"h:104\" called_ae: \"AN_AE_TITLE_TOO_LONG\" } } }",
       "dicom.called_ae must be the PACS's AE title"},
      {"institutions { id: \"d5\" level: COUNTY destinations { name: \"p\" dicom { address: "
       "\"h:104\" called_ae: \"PACS\" tls: true } } }",
       "dicom.ca_file is required with tls"},
      {"institutions { id: \"d6\" level: COUNTY destinations { name: \"h\" hl7 { address: "
       "\"his:2575\" tls: true } } }",
       "hl7.ca_file is required with tls"},
      {"institutions { id: \"d7\" level: COUNTY destinations { name: \"h\" hl7 { address: "
       "\"his:2575\" ca_file: \"his-ca.pem\" } } }",
       "apply with tls: true only"},
      // Readers' names.
      {"institutions { id: \"s1\" level: COUNTY staff { name: \"Wang^Jianguo\" } }", "needs user"},
      {"institutions { id: \"s2\" level: COUNTY staff { user: \"r\" name: \"a=b=c=d\" } }",
       "must be a DICOM person name"},
      {"institutions { id: \"s3\" level: COUNTY staff { user: \"r\" name: \"\" } }",
       "must be a DICOM person name"},
      {"institutions { id: \"s4\" level: COUNTY staff { user: \"r\" name: \"W\\\\J\" } }",
       "must be a DICOM person name"},
      {"institutions { id: \"s5\" level: COUNTY staff { user: \"r\" name: \"A\" } "
       "staff { user: \"r\" name: \"B\" } }",
       "is repeated"},
      {"institutions { id: \"d6\" level: COUNTY destinations { name: \"h\" hl7 { address: "
       "\"h:1\" } } destinations { name: \"h\" hl7 { address: \"h:2\" } } }",
       "destination name \"h\" is repeated"},
      {"dicomweb { listen: \"nowhere\" }", "dicomweb.listen must be HOST:PORT"},
      {"dicomweb { listen: \"127.0.0.1:0\" cors_origins: \"ohif.example\" }", "is not an origin"},
  };
  for (const auto& c : cases) {
    auto parsed = ParseConfig(std::string(kMinimal) + c.extra, "t");
    ASSERT_FALSE(parsed.ok()) << c.extra;
    EXPECT_THAT(parsed.status().message(), HasSubstr(c.expected)) << c.extra;
  }
}

TEST(ConfigTest, DestinationsGetTheirDefaults) {
  auto c = ParseConfig(std::string(kMinimal) +
                           "institutions { id: \"d\" level: COUNTY "
                           "destinations { name: \"pacs\" dicom { address: \"h:104\" "
                           "called_ae: \"PACS\" } } "
                           "destinations { name: \"his\" hl7 { address: \"h:2575\" } } }",
                       "t");
  ASSERT_TRUE(c.ok()) << c.status();
  const auto& d = c->institutions(2).destinations();
  EXPECT_EQ(d[0].dicom().calling_ae(), "RDG");
  EXPECT_EQ(d[1].hl7().receiving_application(), "HIS");
  EXPECT_EQ(d[1].hl7().receiving_facility(), "d");
  EXPECT_EQ(c->outbound().max_backoff_seconds(), 300);
  EXPECT_EQ(c->outbound().timeout_seconds(), 30);
}

TEST(ConfigTest, ReadersAreNamedFromTheirInstitutionsStaff) {
  auto c = ParseConfig(std::string(kMinimal) +
                           "institutions { id: \"c\" level: COUNTY "
                           "staff { user: \"r1\" name: \"Wang^Jianguo=王^建国\" } "
                           "staff { user: \"r2\" name: \"Smith^Anne\" } }",
                       "t");
  ASSERT_TRUE(c.ok()) << c.status();
  const InstitutionDirectory directory(*c);
  EXPECT_EQ(directory.PersonName("c", "r1"), "Wang^Jianguo=王^建国");
  EXPECT_EQ(directory.DisplayName("c", "r1"), "王建国");
  EXPECT_EQ(directory.DisplayName("c", "r2"), "Smith Anne");
  // Unknown, or of another institution: the user name, never someone else's name.
  EXPECT_EQ(directory.PersonName("county-a", "r1"), "");
  EXPECT_EQ(directory.DisplayName("county-a", "r1"), "r1");
  EXPECT_EQ(directory.DisplayName("c", "r3"), "r3");
}

TEST(ConfigTest, BadListenOverride) {
  auto c = ParseConfig(kMinimal, "t", {"nonsense", "", ""});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("HOST:PORT"));
}

TEST(ConfigTest, TlsIsMandatory) {
  auto c = ParseConfig("listen: \"127.0.0.1:0\" data_dir: \"d\"", "t");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("mTLS is required"));
}

}  // namespace
}  // namespace rdg::config
