#include "model/calendar.hpp"

#include <fmt/format.h>

#include <chrono>

namespace billing::model {
namespace {

using namespace std::chrono;

int64_t floor_to(int64_t unix_ns, int64_t unit) {
  int64_t q = unix_ns / unit;
  if (unix_ns % unit < 0) --q;
  return q * unit;
}

int64_t month_start(int64_t unix_ns) {
  const sys_days day{floor<days>(sys_time<nanoseconds>{nanoseconds{unix_ns}})};
  const year_month_day ymd{day};
  const sys_days first{ymd.year() / ymd.month() / 1};
  return duration_cast<nanoseconds>(first.time_since_epoch()).count();
}

}  // namespace

int64_t bucket_start(granularity g, int64_t unix_ns) {
  switch (g) {
    case granularity::hour:
      return floor_to(unix_ns, kNanosPerHour);
    case granularity::day:
      return floor_to(unix_ns, kNanosPerDay);
    case granularity::month:
      return month_start(unix_ns);
  }
  return unix_ns;
}

int64_t next_bucket_start(granularity g, int64_t start) {
  switch (g) {
    case granularity::hour:
      return start + kNanosPerHour;
    case granularity::day:
      return start + kNanosPerDay;
    case granularity::month: {
      const sys_days day{floor<days>(sys_time<nanoseconds>{nanoseconds{start}})};
      const year_month_day ymd{day};
      const sys_days next{(ymd.year() / ymd.month() / 1) + months{1}};
      return duration_cast<nanoseconds>(next.time_since_epoch()).count();
    }
  }
  return start;
}

bool is_aligned(granularity g, int64_t unix_ns) {
  return bucket_start(g, unix_ns) == unix_ns;
}

int64_t unix_now_ns() {
  return duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
}

std::string format_rfc3339(int64_t unix_ns) {
  const sys_time<nanoseconds> instant{nanoseconds{unix_ns}};
  const sys_days day = floor<days>(instant);
  const year_month_day ymd{day};
  const hh_mm_ss<nanoseconds> time{instant - day};
  std::string text =
      fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  time.hours().count(), time.minutes().count(), time.seconds().count());
  if (const int64_t nanos = time.subseconds().count(); nanos != 0) {
    std::string fraction = fmt::format("{:09}", nanos);
    fraction.erase(fraction.find_last_not_of('0') + 1);
    text += "." + fraction;
  }
  return text + "Z";
}

}  // namespace billing::model
