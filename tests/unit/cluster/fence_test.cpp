// The epoch fence's verdicts: a message with an epoch older than the
// receiver's view of the shard is refused, so is one at the current epoch
// addressed to a node that does not lead the shard; a newer epoch (the
// receiver has not read the placement yet) is accepted.
#include <doctest/doctest.h>

#include "cluster/fence.hpp"

using namespace billing;
using namespace billing::cluster;

TEST_CASE("fence: stale epochs and non-leaders are refused") {
  const std::vector<shard_assignment> known = {{{"n1", "n2"}, 3}, {{"n2", "n1"}, 5}};
  CHECK(check_fence(known, "n1", {0, 3}).ok());  // current epoch, n1 leads shard 0
  CHECK(check_fence(known, "n1", {0, 4}).ok());  // newer than n1 knows: the sender's view holds

  auto stale = check_fence(known, "n1", {0, 2});
  CHECK(stale.code() == status_code::aborted);
  CHECK(stale.message() == "stale epoch 2 for shard 0: its epoch is 3 (leader 'n1')");

  // n1 is only a follower of shard 1: at epoch 5 it must not act as leader.
  auto follower = check_fence(known, "n1", {1, 5});
  CHECK(follower.code() == status_code::aborted);
  CHECK(follower.message().find("does not lead shard 1") != std::string::npos);
  CHECK(check_fence(known, "n1", {1, 4}).code() == status_code::aborted);
  CHECK(check_fence(known, "n2", {1, 5}).ok());

  CHECK(check_fence(known, "n1", {7, 1}).code() == status_code::aborted);  // no such shard
  CHECK(check_fence({}, "n1", {7, 1}).ok());                               // no placement read yet
}
