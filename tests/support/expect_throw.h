#pragma once
// Asserts that `statement` throws a std::exception whose message contains `fragment`.
#include <gtest/gtest.h>

#include <string>

#define MIL_EXPECT_THROW_WITH(statement, fragment)                               \
  do {                                                                           \
    bool mil_thrown = false;                                                     \
    try {                                                                        \
      statement;                                                                 \
    } catch (const std::exception& mil_error) {                                  \
      mil_thrown = true;                                                         \
      EXPECT_NE(std::string(mil_error.what()).find(fragment), std::string::npos) \
          << "message was: " << mil_error.what();                                \
    }                                                                            \
    EXPECT_TRUE(mil_thrown) << #statement " did not throw";                      \
  } while (0)
