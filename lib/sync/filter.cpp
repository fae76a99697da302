#include "sync/filter.hpp"

#include "util/failure.hpp"

#include <tuple>
#include <utility>

namespace ferry::sync {

namespace {

// The pattern as parsed, before it becomes an NFA.
struct item {
  enum class kind {
    byte,   // one byte out of `set` (a literal, or a class of ASCII members)
    one,    // one UTF-8 character: an ASCII one out of `set`, or any non-ASCII one (`?`, negated classes)
    star,   // `*`
    star2,  // `**`
    alt,    // `{a,b}`
  };
  kind k = kind::byte;
  std::bitset<256> set;
  std::vector<std::vector<item>> alts;
};
using sequence = std::vector<item>;

std::bitset<256> byte_range(unsigned lo, unsigned hi) {
  std::bitset<256> s;
  for (unsigned b = lo; b <= hi; ++b) s.set(b);
  return s;
}

// Quotes a pattern for an error message without flooding the operator's terminal.
std::string quoted(std::string_view pattern) {
  constexpr std::size_t shown = 80;
  if (pattern.size() <= shown) return "'" + std::string(pattern) + "'";
  return "'" + std::string(pattern.substr(0, shown)) + "...' (" + std::to_string(pattern.size()) + " bytes)";
}

class parser {
 public:
  // `p` is what is parsed; `shown` is the operator's pattern, named in errors.
  parser(std::string_view p, std::string_view shown) : p_(p), shown_(shown) {}

  boost::system::result<sequence, std::string> run() {
    auto seq = parse_sequence(false);
    if (!seq) return seq;
    if (pos_ < p_.size()) return fail("'}' without a matching '{'");  // only '}' stops the top level
    return seq;
  }

 private:
  util::failure fail(const std::string& what) const { return util::failure("pattern " + quoted(shown_) + ": " + what); }

  // Up to the end, or (inside braces) up to an unconsumed ',' or '}'.
  boost::system::result<sequence, std::string> parse_sequence(bool in_braces) {
    sequence seq;
    while (pos_ < p_.size()) {
      const char c = p_[pos_];
      if (c == '}' || (in_braces && c == ',')) break;
      ++pos_;
      item it;
      switch (c) {
        case '*': {
          int stars = 1;
          while (pos_ < p_.size() && p_[pos_] == '*') ++stars, ++pos_;
          if (stars > 2) return fail("more than two '*' in a row");
          it.k = stars == 1 ? item::kind::star : item::kind::star2;
          break;
        }
        case '?':
          it.k = item::kind::one;
          it.set = byte_range(0, 0x7f).reset('/');
          break;
        case '[': {
          auto cls = parse_class();
          if (!cls) return util::failure(std::move(cls.error()));
          it = std::move(*cls);
          break;
        }
        case ']':
          return fail("']' without a matching '['");
        case '{': {
          if (in_braces) return fail("nested '{' is not supported");
          it.k = item::kind::alt;
          for (;;) {
            auto alt = parse_sequence(true);
            if (!alt) return alt;
            it.alts.push_back(std::move(*alt));
            if (pos_ >= p_.size()) return fail("'{' without a matching '}'");
            if (p_[pos_++] == '}') break;  // else ',': the next alternative
          }
          break;
        }
        case '\\':
          if (pos_ >= p_.size()) return fail("'\\' at the end escapes nothing");
          it.set.set(static_cast<unsigned char>(p_[pos_++]));
          break;
        default:
          it.set.set(static_cast<unsigned char>(c));
      }
      seq.push_back(std::move(it));
    }
    return seq;
  }

  // After '['.
  boost::system::result<item, std::string> parse_class() {
    item it;
    bool negated = false;
    if (pos_ < p_.size() && (p_[pos_] == '!' || p_[pos_] == '^')) negated = true, ++pos_;
    std::bitset<256> members;
    bool any = false;
    for (;;) {
      if (pos_ >= p_.size()) return fail("'[' without a matching ']'");
      if (p_[pos_] == ']') {
        ++pos_;
        break;
      }
      auto lo = class_member();
      if (!lo) return util::failure(std::move(lo.error()));
      unsigned hi = *lo;
      if (pos_ + 1 < p_.size() && p_[pos_] == '-' && p_[pos_ + 1] != ']') {
        ++pos_;
        auto h = class_member();
        if (!h) return util::failure(std::move(h.error()));
        if (*h < *lo)
          return fail(std::string("class range '") + static_cast<char>(*lo) + "-" + static_cast<char>(*h) +
                      "' is reversed");
        hi = *h;
      }
      members |= byte_range(*lo, hi);
      any = true;
    }
    if (!any) return fail("empty class '[]' (write '\\]' for a literal ']')");
    members.reset('/');
    if (negated) {
      it.k = item::kind::one;
      it.set = byte_range(0, 0x7f) & ~members;
      it.set.reset('/');
    } else {
      it.k = item::kind::byte;
      it.set = members;
    }
    return it;
  }

  boost::system::result<unsigned, std::string> class_member() {
    char c = p_[pos_++];
    if (c == '\\') {
      if (pos_ >= p_.size()) return fail("'\\' at the end escapes nothing");
      c = p_[pos_++];
    }
    const auto b = static_cast<unsigned char>(c);
    if (b >= 0x80) return fail("classes may hold only ASCII characters");
    return unsigned{b};
  }

  std::string_view p_, shown_;
  std::size_t pos_ = 0;
};

}  // namespace

// Thompson construction, built backwards from the accepting node so every piece knows where it
// continues. Each pattern byte adds a bounded number of nodes, which bounds matching cost.
struct glob_builder {
  std::vector<glob::node>& nodes;

  int add(glob::node n) {
    nodes.push_back(std::move(n));
    return static_cast<int>(nodes.size() - 1);
  }
  int add(std::bitset<256> consumes, int out) {
    glob::node n;
    n.consumes = consumes;
    n.out = out;
    return add(std::move(n));
  }

  int sequence_to(const sequence& seq, int next) {
    for (auto it = seq.rbegin(); it != seq.rend(); ++it) next = item_to(*it, next);
    return next;
  }

  int item_to(const item& it, int next) {
    switch (it.k) {
      case item::kind::byte:
        return add(it.set, next);
      case item::kind::star:
      case item::kind::star2: {
        const int self = static_cast<int>(nodes.size());
        glob::node n;
        n.consumes = it.k == item::kind::star ? ~std::bitset<256>().set('/') : ~std::bitset<256>();
        n.out = self;
        n.epsilon.push_back(next);
        return add(std::move(n));
      }
      case item::kind::alt: {
        glob::node n;
        for (const auto& alt : it.alts) n.epsilon.push_back(sequence_to(alt, next));
        return add(std::move(n));
      }
      case item::kind::one: {
        // A UTF-8 character: an ASCII byte from the set, or a lead byte and its 1-3 continuation
        // bytes. Stray bytes (continuations, 0xf8-0xff) count as one character each, so a key
        // that is not valid UTF-8 still matches predictably.
        const auto cont = byte_range(0x80, 0xbf);
        const int c1 = add(cont, next);
        const int c2 = add(cont, c1);
        const int c3 = add(cont, c2);
        glob::node entry;
        entry.consumes = it.set | cont | byte_range(0xf8, 0xff);
        entry.out = next;
        entry.epsilon = {add(byte_range(0xc0, 0xdf), c1), add(byte_range(0xe0, 0xef), c2),
                         add(byte_range(0xf0, 0xf7), c3)};
        return add(std::move(entry));
      }
    }
    return next;
  }
};

boost::system::result<glob, std::string> glob::compile(std::string_view pattern) {
  if (pattern.empty()) return util::failure("pattern '' is empty");
  if (pattern.size() > max_pattern_bytes)
    return util::failure("pattern " + quoted(pattern) + " is longer than " + std::to_string(max_pattern_bytes) +
                         " bytes");
  glob g;
  g.pattern_ = std::string(pattern);
  std::string body(pattern);
  if (body.front() == '/') {
    g.anchored_ = true;
    body.erase(0, 1);
  }
  if (!body.empty() && body.back() == '/') body += "**";  // rclone: "dir/" is everything under dir
  if (body.empty()) body = "**";                          // "/": the whole tree

  auto seq = parser(body, pattern).run();
  if (!seq) return util::failure(std::move(seq.error()));
  g.nodes_.emplace_back();  // node 0: accept
  glob_builder b{g.nodes_};
  g.start_ = b.sequence_to(*seq, 0);
  return g;
}

bool glob::matches(std::string_view key) const {
  // Breadth-first NFA simulation: each node is visited at most once per key byte.
  const std::size_t n = nodes_.size();
  std::vector<int> cur, next, stack;
  cur.reserve(n);
  next.reserve(n);
  std::vector<std::uint32_t> seen(n, 0);
  std::uint32_t gen = 1;
  auto add = [&](std::vector<int>& list, int s0) {
    stack.assign(1, s0);
    while (!stack.empty()) {
      const int s = stack.back();
      stack.pop_back();
      if (seen[s] == gen) continue;
      seen[s] = gen;
      list.push_back(s);
      for (int e : nodes_[s].epsilon)
        if (seen[e] != gen) stack.push_back(e);
    }
  };
  add(cur, start_);
  for (std::size_t i = 0; i < key.size(); ++i) {
    ++gen;
    next.clear();
    if (cur.empty()) {
      // Nothing alive: only a fresh start after the next '/' can still match.
      if (anchored_) return false;
      i = key.find('/', i);
      if (i == std::string_view::npos) return false;
      add(next, start_);
      std::swap(cur, next);
      continue;
    }
    const auto b = static_cast<unsigned char>(key[i]);
    for (int s : cur)
      if (nodes_[s].consumes.test(b)) add(next, nodes_[s].out);
    if (!anchored_ && b == '/') add(next, start_);
    std::swap(cur, next);
  }
  return seen[0] == gen;
}

boost::system::result<filter, std::string> filter::compile(const filter_options& o) {
  filter f;
  for (auto [name, patterns, out] :
       {std::tuple{"include", &o.include, &f.include_}, std::tuple{"exclude", &o.exclude, &f.exclude_}}) {
    if (patterns->size() > max_patterns)
      return util::failure(std::to_string(patterns->size()) + " " + name + " patterns: at most " +
                           std::to_string(max_patterns) + " are allowed");
    for (const auto& p : *patterns) {
      auto g = glob::compile(p);
      if (!g) return util::failure(std::string(name) + " " + g.error());
      out->push_back(std::move(*g));
    }
  }
  if (o.min_size && o.max_size && *o.min_size > *o.max_size)
    return util::failure("min_size (" + std::to_string(*o.min_size) + " bytes) is larger than max_size (" +
                         std::to_string(*o.max_size) + " bytes): no object could pass");
  if ((o.min_age && o.min_age->count() < 0) || (o.max_age && o.max_age->count() < 0))
    return util::failure("min_age and max_age must not be negative");
  if (o.min_age && o.max_age && *o.min_age > *o.max_age)
    return util::failure("min_age (" + std::to_string(o.min_age->count()) + "s) is larger than max_age (" +
                         std::to_string(o.max_age->count()) + "s): no object could pass");
  f.min_size_ = o.min_size;
  f.max_size_ = o.max_size;
  f.min_age_ = o.min_age;
  f.max_age_ = o.max_age;
  return f;
}

bool filter::empty() const {
  return include_.empty() && exclude_.empty() && !min_size_ && !max_size_ && !min_age_ && !max_age_;
}

bool filter::admits_key(std::string_view key) const {
  for (const auto& g : exclude_)
    if (g.matches(key)) return false;
  if (include_.empty()) return true;
  for (const auto& g : include_)
    if (g.matches(key)) return true;
  return false;
}

bool filter::admits(const store::object_info& o, std::chrono::system_clock::time_point now) const {
  if (!admits_key(o.key)) return false;
  if (min_size_ && o.size < *min_size_) return false;
  if (max_size_ && o.size > *max_size_) return false;
  // A listing gives last_modified (S3's Last-Modified); stat() gives the object's own mtime.
  const auto& when = o.mtime ? o.mtime : o.last_modified;
  if (!when || (!min_age_ && !max_age_)) return true;
  // age = now - mtime, as whole seconds plus a non-negative remainder: computed this way it cannot
  // overflow, whatever mtime a server reported.
  using namespace std::chrono;
  // Truncating (not flooring) to seconds keeps s * one within the clock's range.
  const auto split = [](system_clock::time_point t) {
    const auto d = t.time_since_epoch();
    const auto s = duration_cast<seconds>(d);
    return std::pair{s.count(), (d - s).count()};
  };
  constexpr auto one = duration_cast<system_clock::duration>(seconds(1)).count();
  const auto [now_s, now_r] = split(now);
  const auto [m_s, m_r] = split(*when);
  auto age_s = now_s - m_s;
  auto age_r = now_r - m_r;  // within (-2 s, 2 s)
  age_s += age_r / one;
  age_r %= one;
  if (age_r < 0) {
    --age_s;
    age_r += one;
  }
  if (min_age_ && age_s < min_age_->count()) return false;
  if (max_age_ && (age_s > max_age_->count() || (age_s == max_age_->count() && age_r > 0))) return false;
  return true;
}

}  // namespace ferry::sync
