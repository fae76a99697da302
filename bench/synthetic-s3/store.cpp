#include "store.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <new>

#include "generator.hpp"

namespace ferry::synthetic {
namespace {

constexpr std::uint64_t notional_part_size = 8ull << 20;  // N in a multipart-style ETag

std::uint64_t now_seed() {
  return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
         static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
}

}  // namespace

std::string hex(const util::md5_digest& d) { return util::to_hex(d); }

std::string multipart_etag(const std::vector<util::md5_digest>& part_md5s) {
  util::md5_hasher h;
  for (const auto& d : part_md5s) h.update(std::span<const std::uint8_t>(d));
  return hex(h.finish()) + "-" + std::to_string(part_md5s.size());
}

// ---- synthetic_bucket ----

synthetic_bucket::synthetic_bucket(bucket_spec spec, etag_mode default_etag, std::uint64_t md5_etag_max)
    : spec_(std::move(spec)), mode_(spec_.etag.value_or(default_etag)), md5_max_(md5_etag_max) {
  const auto& classes = spec_.sizes.classes;
  if (classes.size() == 1 && classes[0].lo == classes[0].hi) {
    total_bytes_ = spec_.keys * classes[0].lo;
  } else {
    for (std::uint64_t i = 0; i < spec_.keys; ++i) total_bytes_ += size(i);
  }
  if (mode_ != etag_mode::multipart && spec_.keys > 0) {
    state_ = static_cast<std::uint8_t*>(std::calloc(spec_.keys, 1));
    digests_ = static_cast<util::md5_digest*>(std::calloc(spec_.keys, sizeof(util::md5_digest)));
    if (state_ == nullptr || digests_ == nullptr) {
      std::free(state_);
      std::free(digests_);
      throw std::bad_alloc();
    }
  }
}

synthetic_bucket::~synthetic_bucket() {
  std::free(state_);
  std::free(digests_);
}

std::string synthetic_bucket::key(std::uint64_t i) const {
  char digits[24];
  auto n = std::to_chars(digits, digits + sizeof digits, i).ptr - digits;
  std::string k;
  k.reserve(spec_.prefix.size() + spec_.width + spec_.suffix.size());
  k += spec_.prefix;
  if (static_cast<unsigned>(n) < spec_.width) k.append(spec_.width - static_cast<unsigned>(n), '0');
  k.append(digits, static_cast<std::size_t>(n));
  k += spec_.suffix;
  return k;
}

std::optional<std::uint64_t> synthetic_bucket::index_of(std::string_view key) const {
  if (key.size() != spec_.prefix.size() + spec_.width + spec_.suffix.size()) return std::nullopt;
  if (!key.starts_with(spec_.prefix) || !key.ends_with(spec_.suffix)) return std::nullopt;
  const std::string_view num = key.substr(spec_.prefix.size(), spec_.width);
  std::uint64_t v = 0;
  for (const char c : num) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v >= spec_.keys) return std::nullopt;
  return v;
}

std::uint64_t synthetic_bucket::lower_bound(std::string_view target) const {
  std::uint64_t lo = 0, hi = spec_.keys;
  while (lo < hi) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    if (key(mid) < target)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

std::uint64_t synthetic_bucket::content_seed(std::uint64_t i) const { return object_seed(spec_.seed, key(i)); }

void synthetic_bucket::fill(std::uint64_t i, std::uint64_t offset, std::span<char> out) const {
  synthetic::fill(content_seed(i), offset, out);
}

bool synthetic_bucket::etag_is_md5(std::uint64_t i) const {
  switch (mode_) {
    case etag_mode::md5:
      return true;
    case etag_mode::multipart:
      return false;
    case etag_mode::automatic:
      return size(i) <= md5_max_;
  }
  return false;
}

std::optional<util::md5_digest> synthetic_bucket::cached_md5(std::uint64_t i) const {
  if (state_ == nullptr || i >= spec_.keys) return std::nullopt;
  if (std::atomic_ref<std::uint8_t>(state_[i]).load(std::memory_order_acquire) != 2) return std::nullopt;
  return digests_[i];
}

util::md5_digest synthetic_bucket::compute_md5(std::uint64_t i) {
  if (auto d = cached_md5(i)) return *d;
  const util::md5_digest d = md5_of(content_seed(i), 0, size(i));
  if (state_ != nullptr) {
    std::atomic_ref<std::uint8_t> st(state_[i]);
    std::uint8_t expected = 0;
    // Only the first finisher writes the digest; a concurrent one just uses its own (equal) result.
    if (st.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
      digests_[i] = d;
      st.store(2, std::memory_order_release);
      computed_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return d;
}

std::optional<std::string> synthetic_bucket::etag(std::uint64_t i) const {
  if (etag_is_md5(i)) {
    if (auto d = cached_md5(i)) return hex(*d);
    return std::nullopt;
  }
  // Multipart-style: what S3 gives objects uploaded in parts. Clients cannot check it against content,
  // just as with real multipart objects, and it costs nothing to make.
  const std::uint64_t sz = size(i);
  util::md5_hasher h;
  const std::uint64_t words[2] = {content_seed(i), sz};
  h.update(std::string_view(reinterpret_cast<const char*>(words), sizeof words));
  const std::uint64_t n = std::max<std::uint64_t>(1, (sz + notional_part_size - 1) / notional_part_size);
  return hex(h.finish()) + "-" + std::to_string(n);
}

// ---- writable_bucket ----

bool writable_bucket::put(const std::string& key, object_record r) {
  std::unique_lock lk(mu_);
  return objects_.insert_or_assign(key, std::move(r)).second;
}

bool writable_bucket::contains(std::string_view key) const {
  std::shared_lock lk(mu_);
  return objects_.find(key) != objects_.end();
}

std::optional<object_record> writable_bucket::get(std::string_view key) const {
  std::shared_lock lk(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return std::nullopt;
  return it->second;
}

bool writable_bucket::erase(std::string_view key) {
  std::unique_lock lk(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return false;
  objects_.erase(it);
  return true;
}

std::size_t writable_bucket::size() const {
  std::shared_lock lk(mu_);
  return objects_.size();
}

// ---- part_receiver / multipart_upload ----

void part_receiver::update(std::span<const std::byte> data) {
  received_ += data.size();
  part_md5_.update(data);
  if (direct_) {
    running_md5_->update(data);
    running_crc_.update(data);
    return;
  }
  if (!keep_bytes_ || overflow_) return;
  const std::uint64_t used = budget_->used.fetch_add(data.size(), std::memory_order_relaxed) + data.size();
  if (used > budget_->limit) {
    budget_->used.fetch_sub(data.size() + buffer_.size(), std::memory_order_relaxed);
    overflow_ = true;
    std::string().swap(buffer_);
    return;
  }
  buffer_.append(reinterpret_cast<const char*>(data.data()), data.size());
}

multipart_upload::multipart_upload(std::string id_, std::string bucket_, std::string key_, std::string content_type_,
                                   metadata_list metadata_, buffer_budget* budget)
    : id(std::move(id_)),
      bucket(std::move(bucket_)),
      key(std::move(key_)),
      content_type(std::move(content_type_)),
      metadata(std::move(metadata_)),
      initiated(std::chrono::system_clock::now()),
      budget_(budget) {}

multipart_upload::~multipart_upload() { release(); }

std::unique_ptr<part_receiver> multipart_upload::begin_part(int number, std::optional<content_range> range) {
  auto r = std::make_unique<part_receiver>();
  r->number_ = number;
  r->budget_ = budget_;
  r->range_ = std::move(range);
  std::lock_guard lk(mu_);
  if (!busy_ && !broken_ && number == next_) {
    busy_ = true;
    r->direct_ = true;
    r->running_md5_.emplace(running_md5_);
    r->running_crc_ = running_crc_;
  } else {
    r->keep_bytes_ = !broken_ && number > next_ && !r->range_;
  }
  return r;
}

void multipart_upload::drop_stale_locked() {
  // A part sent again while its earlier copy was being folded: harmless if the bytes are the same.
  while (!pending_.empty() && pending_.begin()->first < next_) {
    auto it = pending_.begin();
    auto f = folded_.find(it->first);
    if (f == folded_.end() || f->second != it->second.md5) broken_ = true;
    pending_bytes_ -= it->second.range ? it->second.range->length : it->second.bytes.size();
    budget_->used.fetch_sub(it->second.bytes.size(), std::memory_order_relaxed);
    pending_.erase(it);
  }
}

bool multipart_upload::finish_part(part_receiver& r, const util::md5_digest& md5) {
  std::lock_guard lk(mu_);
  parts_[r.number_] = part_record{r.received_, md5, std::chrono::system_clock::now(), r.range_};
  if (r.direct_) {
    running_md5_ = *r.running_md5_;
    running_crc_ = r.running_crc_;
    folded_[r.number_] = md5;
    next_ = r.number_ + 1;
    busy_ = false;
    drop_stale_locked();
  } else if (r.number_ < next_) {
    auto f = folded_.find(r.number_);
    if (f == folded_.end() || f->second != md5) broken_ = true;
  } else if (r.overflow_ || (!r.keep_bytes_ && !r.range_)) {
    broken_ = true;
  } else {
    pending p{std::move(r.buffer_), r.range_, md5};
    const std::uint64_t work = p.range ? p.range->length : p.bytes.size();
    r.buffer_.clear();
    if (auto old = pending_.find(r.number_); old != pending_.end()) {
      pending_bytes_ -= old->second.range ? old->second.range->length : old->second.bytes.size();
      budget_->used.fetch_sub(old->second.bytes.size(), std::memory_order_relaxed);
      old->second = std::move(p);
    } else {
      pending_.emplace(r.number_, std::move(p));
    }
    pending_bytes_ += work;
  }
  if (broken_) {
    // Nothing held back can be used any more.
    for (auto& [n, p] : pending_) budget_->used.fetch_sub(p.bytes.size(), std::memory_order_relaxed);
    pending_.clear();
    pending_bytes_ = 0;
  }
  return !busy_ && !broken_ && pending_.contains(next_);
}

void multipart_upload::cancel_part(part_receiver& r) {
  std::lock_guard lk(mu_);
  if (r.direct_) busy_ = false;
  if (r.keep_bytes_ && !r.overflow_) budget_->used.fetch_sub(r.buffer_.size(), std::memory_order_relaxed);
  std::string().swap(r.buffer_);
  r.direct_ = false;
  r.keep_bytes_ = false;
}

std::uint64_t multipart_upload::pending_bytes() const {
  std::lock_guard lk(mu_);
  return pending_bytes_;
}

void multipart_upload::fold_pending() {
  for (;;) {
    pending p;
    md5_ctx md5;
    util::crc32c_hasher crc;
    int n = 0;
    {
      std::lock_guard lk(mu_);
      if (busy_ || broken_) return;
      auto it = pending_.find(next_);
      if (it == pending_.end()) return;
      n = next_;
      p = std::move(it->second);
      pending_.erase(it);
      busy_ = true;
      md5 = running_md5_;
      crc = running_crc_;
    }
    if (p.range) {
      auto sink = [&](std::span<const std::byte> b) {
        md5.update(b);
        crc.update(b);
      };
      generate_into(p.range->bucket->content_seed(p.range->index), p.range->offset, p.range->length, sink);
    } else {
      const std::span<const std::byte> b(reinterpret_cast<const std::byte*>(p.bytes.data()), p.bytes.size());
      md5.update(b);
      crc.update(b);
    }
    std::lock_guard lk(mu_);
    pending_bytes_ -= p.range ? p.range->length : p.bytes.size();
    budget_->used.fetch_sub(p.bytes.size(), std::memory_order_relaxed);
    running_md5_ = md5;
    running_crc_ = crc;
    folded_[n] = p.md5;
    next_ = n + 1;
    busy_ = false;
    drop_stale_locked();
  }
}

std::vector<std::pair<int, part_record>> multipart_upload::parts() const {
  std::lock_guard lk(mu_);
  return {parts_.begin(), parts_.end()};
}

boost::system::result<object_record, s3_failure> multipart_upload::complete(const std::vector<complete_part>& list,
                                                                            std::uint64_t min_part_size) {
  std::lock_guard lk(mu_);
  if (list.empty())
    return s3_failure{400, "MalformedXML",
                      "The XML you provided was not well-formed or did not validate against "
                      "our published schema"};
  std::vector<util::md5_digest> md5s;
  md5s.reserve(list.size());
  object_record rec;
  bool contiguous = true;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const auto& p = list[i];
    if (i > 0 && p.number <= list[i - 1].number)
      return s3_failure{400, "InvalidPartOrder",
                        "The list of parts was not in ascending order. Parts must be ordered by part number."};
    auto it = parts_.find(p.number);
    if (it == parts_.end() || hex(it->second.md5) != p.etag)
      return s3_failure{400, "InvalidPart",
                        "One or more of the specified parts could not be found. The part may not have been "
                        "uploaded, or the specified entity tag may not have matched the part's entity tag."};
    if (i + 1 < list.size() && it->second.size < min_part_size)
      return s3_failure{400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size."};
    if (p.number != static_cast<int>(i) + 1) contiguous = false;
    md5s.push_back(it->second.md5);
    rec.size += it->second.size;
  }
  rec.etag = multipart_etag(md5s);
  rec.parts = static_cast<unsigned>(list.size());
  rec.how = "multipart";
  rec.content_type = content_type;
  rec.metadata = metadata;
  rec.last_modified = std::chrono::system_clock::now();
  if (contiguous && !broken_ && !busy_ && next_ == static_cast<int>(list.size()) + 1) {
    rec.md5 = running_md5_.digest();
    rec.crc32c = running_crc_.value();
  }
  // Parts copied in order from one synthetic object, covering all of it: the new object is a copy of it.
  const auto& first = parts_.find(list.front().number)->second.range;
  if (first && first->offset == 0) {
    std::uint64_t at = 0;
    bool same = true;
    for (const auto& p : list) {
      const auto& r = parts_.find(p.number)->second.range;
      if (!r || r->bucket != first->bucket || r->index != first->index || r->offset != at) {
        same = false;
        break;
      }
      at += r->length;
    }
    if (same && at == first->bucket->size(first->index)) rec.origin = origin_ref{first->bucket, first->index};
  }
  return rec;
}

void multipart_upload::release() {
  std::lock_guard lk(mu_);
  for (auto& [n, p] : pending_) budget_->used.fetch_sub(p.bytes.size(), std::memory_order_relaxed);
  pending_.clear();
  pending_bytes_ = 0;
}

// ---- store ----

bool store::add(const bucket_spec& spec, etag_mode default_etag, std::uint64_t md5_etag_max) {
  auto b = std::make_shared<bucket>();
  b->name = spec.name;
  b->created = spec.mtime;
  b->latency = spec.latency;
  if (spec.writable) {
    b->writable = std::make_shared<writable_bucket>();
    b->created = std::chrono::system_clock::now();
  } else {
    b->synthetic = std::make_shared<synthetic_bucket>(spec, default_etag, md5_etag_max);
  }
  std::unique_lock lk(mu_);
  return buckets_.emplace(spec.name, std::move(b)).second;
}

std::shared_ptr<bucket> store::find(std::string_view name) const {
  std::shared_lock lk(mu_);
  auto it = buckets_.find(name);
  return it == buckets_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<bucket>> store::buckets() const {
  std::shared_lock lk(mu_);
  std::vector<std::shared_ptr<bucket>> out;
  for (const auto& [n, b] : buckets_) out.push_back(b);
  return out;
}

std::vector<std::shared_ptr<synthetic_bucket>> store::synthetic_buckets() const {
  std::shared_lock lk(mu_);
  std::vector<std::shared_ptr<synthetic_bucket>> out;
  for (const auto& [n, b] : buckets_)
    if (b->synthetic) out.push_back(b->synthetic);
  return out;
}

store::create_result store::create_writable(const std::string& name) {
  std::unique_lock lk(mu_);
  if (buckets_.contains(name)) return create_result::exists;
  if (buckets_.size() >= limits_.max_buckets) return create_result::too_many;
  auto b = std::make_shared<bucket>();
  b->name = name;
  b->created = std::chrono::system_clock::now();
  b->writable = std::make_shared<writable_bucket>();
  buckets_.emplace(name, std::move(b));
  return create_result::created;
}

std::optional<s3_failure> store::remove(const std::string& name) {
  std::unique_lock lk(mu_);
  auto it = buckets_.find(name);
  if (it == buckets_.end()) return s3_failure{404, "NoSuchBucket", "The specified bucket does not exist"};
  if (!it->second->writable)
    return s3_failure{403, "AccessDenied", "Synthetic buckets are read-only and cannot be deleted"};
  if (it->second->writable->size() > 0)
    return s3_failure{409, "BucketNotEmpty", "The bucket you tried to delete is not empty"};
  buckets_.erase(it);
  return std::nullopt;
}

bool store::reserve_object() {
  if (objects_.fetch_add(1, std::memory_order_relaxed) >= limits_.max_objects) {
    objects_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void store::release_object() { objects_.fetch_sub(1, std::memory_order_relaxed); }

std::shared_ptr<multipart_upload> store::create_upload(const std::string& bucket, const std::string& key,
                                                       std::string content_type, metadata_list metadata) {
  const std::uint64_t n = upload_counter_.fetch_add(1, std::memory_order_relaxed);
  const std::uint64_t a = mix64(now_seed() ^ n), b = mix64(a ^ 0x6A09E667F3BCC908ull);
  std::string id = util::to_hex(std::string_view(reinterpret_cast<const char*>(&a), 8)) +
                   util::to_hex(std::string_view(reinterpret_cast<const char*>(&b), 8));
  auto up = std::make_shared<multipart_upload>(id, bucket, key, std::move(content_type), std::move(metadata), &budget_);
  std::unique_lock lk(mu_);
  if (uploads_.size() >= limits_.max_uploads) return nullptr;
  uploads_.emplace(std::move(id), up);
  return up;
}

std::shared_ptr<multipart_upload> store::find_upload(std::string_view id) const {
  std::shared_lock lk(mu_);
  auto it = uploads_.find(id);
  return it == uploads_.end() ? nullptr : it->second;
}

void store::remove_upload(std::string_view id) {
  std::shared_ptr<multipart_upload> up;
  {
    std::unique_lock lk(mu_);
    auto it = uploads_.find(id);
    if (it == uploads_.end()) return;
    up = std::move(it->second);
    uploads_.erase(it);
  }
  up->release();
}

std::vector<std::shared_ptr<multipart_upload>> store::uploads_of(std::string_view bucket) const {
  std::shared_lock lk(mu_);
  std::vector<std::shared_ptr<multipart_upload>> out;
  for (const auto& [id, up] : uploads_)
    if (up->bucket == bucket) out.push_back(up);
  return out;
}

std::optional<origin_ref> store::find_origin(std::string_view key, std::uint64_t size, const util::md5_digest& md5,
                                             std::uint64_t hash_limit) const {
  for (const auto& b : synthetic_buckets()) {
    std::string_view tail = key;
    for (;;) {
      if (auto i = b->index_of(tail); i && b->size(*i) == size) {
        auto d = b->cached_md5(*i);
        if (!d && size <= hash_limit) d = b->compute_md5(*i);
        if (d && *d == md5) return origin_ref{b, *i};
      }
      const auto slash = tail.find('/');
      if (slash == std::string_view::npos) break;
      tail.remove_prefix(slash + 1);
    }
  }
  return std::nullopt;
}

}  // namespace ferry::synthetic
