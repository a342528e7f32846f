#include "storage/base/digest.h"

#include <gtest/gtest.h>

#include "tests/mocks/temp_dir.h"

namespace rdg::storage {
namespace {

TEST(DigestTest, KnownVectors) {
  Sha256 h;
  EXPECT_EQ(ToHex(h.Finish()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  h.Update("ab");
  h.Update("c");
  EXPECT_EQ(ToHex(h.Finish()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(DigestTest, HexAndRawRoundTrip) {
  Sha256 h;
  h.Update("rdg");
  Digest d = h.Finish();
  EXPECT_EQ(*DigestFromHexOrRaw(ToHex(d)), d);
  EXPECT_EQ(*DigestFromHexOrRaw(ToRaw(d)), d);
  EXPECT_FALSE(DigestFromHexOrRaw("abc").ok());
  EXPECT_FALSE(DigestFromHexOrRaw(std::string(64, 'z')).ok());
}

TEST(DigestTest, OfFileMatchesIncremental) {
  testing::TempDir dir;
  std::string data(3 << 20, 'x');  // spans several read buffers
  Sha256 h;
  h.Update(data);
  EXPECT_EQ(*Sha256::OfFile(dir.Write("f", data)), h.Finish());
  EXPECT_TRUE(absl::IsNotFound(Sha256::OfFile(dir.Join("missing")).status()));
}

}  // namespace
}  // namespace rdg::storage
