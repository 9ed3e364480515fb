#include "mil/core/sha256.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/temp_dir.h"

namespace mil {

// Expected digests are the FIPS 180-2 / NIST example vectors.
TEST(Sha256, MatchesNistVectorsForShortMessages) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, GivesTheSameDigestWhateverTheChunking) {
  // One million 'a': the NIST long-message vector, fed in uneven chunks.
  Sha256 hasher;
  const std::string chunk(999, 'a');
  std::size_t fed = 0;
  while (fed + chunk.size() <= 1000000) {
    hasher.update(chunk);
    fed += chunk.size();
  }
  hasher.update(std::string(1000000 - fed, 'a'));
  EXPECT_EQ(hasher.hex_digest(),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, HashesFilesLikeTheirBytes) {
  testing::TempDir dir;
  std::ofstream(dir / "f.bin") << "abc";
  EXPECT_EQ(sha256_file(dir / "f.bin"), sha256_hex("abc"));
  EXPECT_THROW(sha256_file(dir / "missing.bin"), std::runtime_error);
}

}  // namespace mil
