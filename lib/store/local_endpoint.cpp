#include "store/local_endpoint.hpp"

#include "store/order_check.hpp"
#include "util/hash.hpp"

#include <spdlog/spdlog.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <system_error>

namespace ferry::store {

namespace {

namespace fs = std::filesystem;
using sys_clock = std::chrono::system_clock;

// Linux's NAME_MAX and PATH_MAX: longer names and keys can never name a file.
constexpr std::size_t max_segment_bytes = NAME_MAX;
constexpr std::size_t max_key_bytes = PATH_MAX - 1;
// Bytes moved per hop to the pool while writing a streamed body.
constexpr std::size_t write_chunk_bytes = 1 << 20;
// S3's part numbers.
constexpr int max_part_number = 10000;
// Keys removed per hop to the pool by remove_many: one hop stays short, and many keys take many hops.
constexpr std::size_t remove_chunk_keys = 1000;

class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);  // close errors on a read-only or already-fsynced fd carry no news
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

error make_error(std::string code, std::string message, unsigned status = 0, bool retryable = false) {
  auto e = s3::local_error(std::move(code), std::move(message));
  e.http_status = status;
  e.retryable = retryable;
  return e;
}

error invalid_key(std::string_view key, std::string_view why) {
  // The key may hold control characters or be long; error::to_string() makes it printable and bounded.
  return make_error("InvalidKey", "invalid key '" + std::string(key.substr(0, 512)) + "': " + std::string(why), 400);
}

// What an errno means to a caller. `reading`: a missing file is a missing object (404); while
// writing, a vanished directory is a transient race instead.
error errno_error(int err, std::string_view what, bool reading) {
  std::string msg = std::string(what) + ": " + std::generic_category().message(err);
  switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ELOOP:
      if (reading) return make_error("NoSuchKey", std::move(msg), 404);
      return make_error("LocalIOError", std::move(msg), 0, true);
    case EACCES:
    case EPERM:
      return make_error("AccessDenied", std::move(msg), 403);
    case ENAMETOOLONG:
      return make_error("InvalidKey", std::move(msg), 400);
    case ENOSPC:
    case EDQUOT:
      return make_error("NoSpace", std::move(msg), 507);
    case EROFS:
      return make_error("ReadOnlyFilesystem", std::move(msg), 403);
    case EINTR:
    case EAGAIN:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
    case EIO:
    case ESTALE:
    case ETIMEDOUT:
      return make_error("LocalIOError", std::move(msg), 0, true);
    default:
      return make_error("LocalIOError", std::move(msg));
  }
}

error errno_error(std::string_view what, bool reading) { return errno_error(errno, what, reading); }

sys_clock::time_point to_time_point(const timespec& ts) {
  using namespace std::chrono;
  return sys_clock::time_point(duration_cast<sys_clock::duration>(seconds(ts.tv_sec) + nanoseconds(ts.tv_nsec)));
}

timespec to_timespec(sys_clock::time_point t) {
  using namespace std::chrono;
  const auto ns = duration_cast<nanoseconds>(t.time_since_epoch());
  const auto s = floor<seconds>(ns);
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(s.count());
  ts.tv_nsec = static_cast<long>((ns - s).count());
  return ts;
}

result<std::vector<std::string_view>> split_key(std::string_view key) {
  if (key.empty()) return invalid_key(key, "empty");
  if (key.size() > max_key_bytes) return invalid_key(key, "longer than " + std::to_string(max_key_bytes) + " bytes");
  if (key.find('\0') != std::string_view::npos) return invalid_key(key, "contains NUL");
  if (key.front() == '/') return invalid_key(key, "absolute");
  std::vector<std::string_view> segs;
  std::size_t start = 0;
  for (;;) {
    const auto slash = key.find('/', start);
    const auto seg = key.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (seg.empty()) return invalid_key(key, "empty path component");
    if (seg == "." || seg == "..") return invalid_key(key, "'.' or '..' component");
    if (seg.size() > max_segment_bytes)
      return invalid_key(key, "component longer than " + std::to_string(max_segment_bytes) + " bytes");
    segs.push_back(seg);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (segs.back().starts_with(temp_file_prefix)) return invalid_key(key, "reserved for ferry's temp files");
  return segs;
}

enum class walk_mode { read, write };

// The directory holding a key's file, opened component by component from the root, and the
// file's name in it. Symlinked directories are refused unless followed; write mode creates
// missing directories (fsyncing each parent that gained one).
struct located {
  unique_fd dir;
  std::string name;
};

result<located> locate(const fs::path& root, std::string_view key, walk_mode mode, bool follow, bool sync) {
  auto segs = split_key(key);
  if (!segs) return segs.error();
  const bool reading = mode == walk_mode::read;
  unique_fd dir(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir && errno == ENOENT && !reading) {
    std::error_code ec;
    fs::create_directories(root, ec);
    if (ec) return errno_error(ec.value(), "creating " + root.string(), false);
    dir = unique_fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }
  if (!dir) return errno_error("opening " + root.string(), reading);
  const int nofollow = follow ? 0 : O_NOFOLLOW;
  for (std::size_t i = 0; i + 1 < segs->size(); ++i) {
    const std::string seg((*segs)[i]);
    const auto open_sub = [&] {
      return ::openat(dir.get(), seg.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | nofollow);
    };
    int fd = open_sub();
    if (fd < 0 && errno == ENOENT && !reading) {
      if (::mkdirat(dir.get(), seg.c_str(), 0755) != 0 && errno != EEXIST)
        return errno_error("creating a directory for " + std::string(key), false);
      if (sync && ::fsync(dir.get()) != 0) return errno_error("fsync of a directory for " + std::string(key), false);
      fd = open_sub();
    }
    if (fd < 0) {
      const int err = errno;
      const std::string where(key.substr(0, static_cast<std::size_t>((*segs)[i].data() + seg.size() - key.data())));
      if (!reading && (err == ENOTDIR || err == ELOOP))
        return make_error("PathConflict", "writing " + std::string(key) + ": '" + where + "' is not a directory", 409);
      return errno_error(err, "opening directory " + where, reading);
    }
    dir = unique_fd(fd);
  }
  return located{std::move(dir), std::string(segs->back())};
}

std::string_view extension_of(std::string_view key) {
  const auto slash = key.rfind('/');
  const auto base = slash == std::string_view::npos ? key : key.substr(slash + 1);
  const auto dot = base.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return {};
  return base.substr(dot + 1);
}

object_info info_from_stat(std::string key, const struct stat& st) {
  object_info info;
  info.size = static_cast<std::uint64_t>(st.st_size);
  info.mtime = to_time_point(st.st_mtim);
  info.last_modified = info.mtime;
  info.metadata.content_type = std::string(guess_content_type(key));
  info.key = std::move(key);
  return info;
}

std::optional<std::vector<std::uint8_t>> decode_digest(std::string_view b64, std::size_t bytes) {
  auto d = util::base64_decode(b64);
  if (!d || d->size() != bytes) return std::nullopt;
  return d;
}

// The expected digests of a body, from write_options; checked after the bytes are on disk and
// before they are renamed into place, as S3 checks before it stores.
struct expected_digests {
  std::optional<std::vector<std::uint8_t>> md5, crc32c;

  static result<expected_digests> from(const write_options& opts) {
    expected_digests out;
    if (!opts.content_md5.empty()) {
      out.md5 = decode_digest(opts.content_md5, 16);
      if (!out.md5) return make_error("InvalidDigest", "Content-MD5 is not a base64 MD5: " + opts.content_md5, 400);
    }
    if (!opts.checksum_crc32c.empty()) {
      out.crc32c = decode_digest(opts.checksum_crc32c, 4);
      if (!out.crc32c)
        return make_error("InvalidRequest", "checksum_crc32c is not a base64 CRC32C: " + opts.checksum_crc32c, 400);
    }
    return out;
  }
};

// Where a write's bytes stay until commit(): a temp file beside the final name.
struct staged_file {
  unique_fd dir, fd;
  std::string tmp_name, final_name;
  std::string tmp_path;  // for logs and multipart ids
  bool finished = false;

  static result<std::unique_ptr<staged_file>> create(const fs::path& root, std::string_view key, bool follow,
                                                     bool sync) {
    auto loc = locate(root, key, walk_mode::write, follow, sync);
    if (!loc) return loc.error();
    auto f = std::make_unique<staged_file>();
    f->dir = std::move(loc->dir);
    f->final_name = std::move(loc->name);
    thread_local std::mt19937_64 rng{std::random_device{}() ^
                                     static_cast<std::uint64_t>(sys_clock::now().time_since_epoch().count())};
    for (int attempt = 0; attempt < 8 && !f->fd; ++attempt) {
      static constexpr char hex[] = "0123456789abcdef";
      std::string name(temp_file_prefix);
      auto r = rng();
      for (int i = 0; i < 16; ++i, r >>= 4) name += hex[r & 15];
      name += '-';
      // The final name may already be near NAME_MAX: keep its head so the temp name stays legal.
      name += std::string_view(f->final_name).substr(0, max_segment_bytes - name.size());
      int fd = ::openat(f->dir.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
      if (fd < 0 && errno != EEXIST) return errno_error("creating a temp file for " + std::string(key), false);
      if (fd >= 0) {
        f->fd = unique_fd(fd);
        f->tmp_name = std::move(name);
      }
    }
    if (!f->fd) return make_error("LocalIOError", "no free temp file name for " + std::string(key), 0, true);
    const auto slash = key.rfind('/');
    f->tmp_path =
        (root / std::string(slash == std::string_view::npos ? "" : key.substr(0, slash)) / f->tmp_name).string();
    return f;
  }

  result<void> write_all(std::uint64_t offset, const char* data, std::size_t n) {
    while (n > 0) {
      const auto w = ::pwrite(fd.get(), data, n, static_cast<off_t>(offset));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return errno_error("writing " + tmp_path, false);
      if (w == 0) return make_error("LocalIOError", "writing " + tmp_path + ": no progress", 0, true);
      data += w;
      n -= static_cast<std::size_t>(w);
      offset += static_cast<std::uint64_t>(w);
    }
    return {};
  }

  // Sets the mtime before the rename, so the file never appears with a wrong one.
  result<void> commit(std::optional<sys_clock::time_point> mtime, bool sync) {
    if (mtime) {
      std::array<timespec, 2> times{};
      times[0].tv_nsec = UTIME_OMIT;
      times[1] = to_timespec(*mtime);
      if (::futimens(fd.get(), times.data()) != 0) return errno_error("setting the mtime of " + tmp_path, false);
    }
    if (sync && ::fsync(fd.get()) != 0) return errno_error("fsync of " + tmp_path, false);
    if (::renameat(dir.get(), tmp_name.c_str(), dir.get(), final_name.c_str()) != 0) {
      const int err = errno;
      if (err == EISDIR || err == ENOTEMPTY || err == EEXIST)
        return make_error("PathConflict", "'" + final_name + "' is a directory", 409);
      return errno_error(err, "renaming " + tmp_path + " into place", false);
    }
    finished = true;
    fd.reset();
    if (sync && ::fsync(dir.get()) != 0) return errno_error("fsync of the directory of " + tmp_path, false);
    return {};
  }

  void discard() noexcept {
    if (!finished && ::unlinkat(dir.get(), tmp_name.c_str(), 0) != 0 && errno != ENOENT)
      spdlog::warn("store: cannot remove temp file {}: {}", tmp_path, std::generic_category().message(errno));
    finished = true;
    fd.reset();
    dir.reset();
  }
};

// Owns a staged file on the io side; one that was neither committed nor discarded is removed on
// the pool when the owner goes away (an abandoned write, a destroyed coroutine).
class staged_guard {
 public:
  staged_guard(blocking_pool& pool, std::unique_ptr<staged_file> f) : pool_(&pool), f_(std::move(f)) {}
  staged_guard(staged_guard&&) = default;
  staged_guard& operator=(staged_guard&&) = delete;
  ~staged_guard() {
    if (f_ && !f_->finished) pool_->detach([f = std::move(f_)]() mutable { f->discard(); });
  }
  staged_file* get() const { return f_.get(); }

 private:
  blocking_pool* pool_;
  std::unique_ptr<staged_file> f_;
};

// ---------------------------------------------------------------------------------------------
// Listing

class local_lister final : public lister {
 public:
  local_lister(fs::path root, blocking_pool& pool, local_options opts)
      : root_(std::move(root)), pool_(pool), opts_(opts), where_(root_.string()) {}
  ~local_lister() override {
    if (!stack_.empty()) pool_.detach([s = std::move(stack_)]() mutable { s.clear(); });
  }

  asio::awaitable<result<std::vector<object_info>>> next() override {
    auto op = [this] { return page(); };
    co_return co_await run_blocking(pool_, std::move(op));
  }

 private:
  // A directory's name sorts as "name/": that is where its keys fall in S3's order.
  struct entry {
    std::string sort_name;  // "file" or "dir/"
    bool dir = false;
  };
  struct frame {
    unique_fd fd;
    std::string prefix;  // the directory's key prefix: "" or "a/b/"
    std::vector<entry> entries;
    std::size_t next = 0;
    dev_t dev = 0;
    ino_t ino = 0;
  };

  result<std::vector<object_info>> page() {
    if (failed_) return *failed_;
    auto out = fill_page();
    if (!out) failed_ = out.error();  // a walk cut short cannot resume where it was
    return out;
  }

  result<std::vector<object_info>> fill_page() {
    std::vector<object_info> out;
    if (!started_) {
      started_ = true;
      unique_fd fd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!fd && errno == ENOENT) return make_error("RootNotFound", "directory " + where_ + " does not exist", 404);
      if (!fd) return errno_error("opening " + where_, false);
      auto pushed = push(std::move(fd), "");
      if (!pushed) return pushed.error();
    }
    const std::size_t limit = std::max<std::size_t>(opts_.list_page_size, 1);
    while (out.size() < limit && !stack_.empty()) {
      auto& top = stack_.back();
      if (top.next == top.entries.size()) {
        stack_.pop_back();
        continue;
      }
      entry e = std::move(top.entries[top.next++]);
      if (e.dir) {
        const std::string name = e.sort_name.substr(0, e.sort_name.size() - 1);
        const int nofollow = opts_.follow_symlinks ? 0 : O_NOFOLLOW;
        unique_fd fd(::openat(top.fd.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | nofollow));
        if (!fd) {
          // Gone, or replaced by something else since it was read: it changed under the walk.
          if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) continue;
          return errno_error("listing " + where_ + "/" + top.prefix + name, false);
        }
        auto pushed = push(std::move(fd), top.prefix + e.sort_name);  // invalidates `top`
        if (!pushed) return pushed.error();
        continue;
      }
      struct stat st {};
      if (::fstatat(top.fd.get(), e.sort_name.c_str(), &st, opts_.follow_symlinks ? 0 : AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // removed since it was read
        return errno_error("listing " + where_ + "/" + top.prefix + e.sort_name, false);
      }
      if (!S_ISREG(st.st_mode)) continue;
      auto info = info_from_stat(top.prefix + e.sort_name, st);
      info.metadata = {};  // listings carry no metadata (as S3's)
      if (auto ok = order_.next(info.key, where_); !ok) return ok.error();
      out.push_back(std::move(info));
    }
    if (stack_.empty() && !logged_) {
      logged_ = true;
      if (skipped_links_ || skipped_other_)
        spdlog::debug("store: listing {} skipped {} symlinks and {} special files", where_, skipped_links_,
                      skipped_other_);
    }
    return out;
  }

  // Reads and sorts a directory and puts it on top of the walk.
  result<void> push(unique_fd fd, std::string prefix) {
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return errno_error("listing " + where_ + "/" + prefix, false);
    if (opts_.follow_symlinks) {
      for (const auto& f : stack_) {
        if (f.dev == st.st_dev && f.ino == st.st_ino) {
          spdlog::warn("store: listing {}: skipping {}, a symlink cycle", where_, prefix);
          return {};
        }
      }
    }
    auto entries = read_dir(fd.get(), prefix);
    if (!entries) return entries.error();
    std::sort(entries->begin(), entries->end(),
              [](const entry& a, const entry& b) { return key_less(a.sort_name, b.sort_name); });
    frame f;
    f.fd = std::move(fd);
    f.prefix = std::move(prefix);
    f.entries = std::move(*entries);
    f.dev = st.st_dev;
    f.ino = st.st_ino;
    stack_.push_back(std::move(f));
    return {};
  }

  result<std::vector<entry>> read_dir(int fd, const std::string& prefix) {
    const auto what = "listing " + where_ + "/" + prefix;
    // fdopendir owns the descriptor it is given; the frame keeps its own.
    const int own = ::dup(fd);
    if (own < 0) return errno_error(what, false);
    DIR* d = ::fdopendir(own);
    if (!d) {
      const int err = errno;
      ::close(own);
      return errno_error(err, what, false);
    }
    std::unique_ptr<DIR, int (*)(DIR*)> closer(d, ::closedir);
    ::rewinddir(d);  // the dup shares its offset with `fd`
    std::vector<entry> out;
    for (;;) {
      errno = 0;
      const dirent* de = ::readdir(d);
      if (!de) {
        if (errno != 0) return errno_error(what, false);
        break;
      }
      const std::string_view name(de->d_name);
      if (name == "." || name == "..") continue;
      unsigned char type = de->d_type;
      if (type == DT_UNKNOWN || (type == DT_LNK && opts_.follow_symlinks)) {
        struct stat st {};
        const int flags = type == DT_LNK ? 0 : AT_SYMLINK_NOFOLLOW;
        if (::fstatat(fd, de->d_name, &st, flags) != 0) {
          if (errno == ENOENT) {  // removed since, or a dangling link
            if (type == DT_LNK) ++skipped_links_;
            continue;
          }
          return errno_error(what + std::string(name), false);
        }
        type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : S_ISLNK(st.st_mode) ? DT_LNK : DT_UNKNOWN;
      }
      if (type == DT_DIR) {
        out.push_back(entry{std::string(name) + '/', true});
      } else if (type == DT_REG) {
        if (name.starts_with(temp_file_prefix)) continue;  // an in-progress write
        out.push_back(entry{std::string(name), false});
      } else if (type == DT_LNK) {
        ++skipped_links_;
        spdlog::debug("store: listing {}: skipping symlink {}{}", where_, prefix, name);
      } else {
        ++skipped_other_;
      }
    }
    return out;
  }

  fs::path root_;
  blocking_pool& pool_;
  local_options opts_;
  std::string where_;
  std::vector<frame> stack_;
  order_check order_;  // cheap insurance: the walk must produce byte order by construction
  bool started_ = false, logged_ = false;
  std::optional<error> failed_;
  std::uint64_t skipped_links_ = 0, skipped_other_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Reading

struct opened_file {
  unique_fd fd;
  struct stat st {};
};

// Opens a regular file without blocking on FIFOs or devices (O_NONBLOCK, then the type check).
result<opened_file> open_regular(const fs::path& root, std::string_view key, bool follow) {
  auto loc = locate(root, key, walk_mode::read, follow, false);
  if (!loc) return loc.error();
  const int nofollow = follow ? 0 : O_NOFOLLOW;
  opened_file f;
  f.fd =
      unique_fd(::openat(loc->dir.get(), loc->name.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | nofollow));
  if (!f.fd) return errno_error("opening " + std::string(key), true);
  if (::fstat(f.fd.get(), &f.st) != 0) return errno_error("stat of " + std::string(key), true);
  if (!S_ISREG(f.st.st_mode)) return make_error("NoSuchKey", std::string(key) + " is not a regular file", 404);
  return f;
}

error not_supported(std::string_view what) {
  return make_error("NotSupported",
                    std::string(what) +
                        ": a local upload's parts live in a temp file that does not "
                        "outlive its writer",
                    501);
}

// Removes a key's file; a missing one, a directory or an unfollowed symlink (no objects) is success.
result<void> remove_file(const fs::path& root, const std::string& key, bool follow) {
  auto loc = locate(root, key, walk_mode::read, follow, false);
  if (!loc) {
    if (loc.error().code == "NoSuchKey") return {};  // already gone, as S3's delete
    return loc.error();
  }
  struct stat st {};
  if (::fstatat(loc->dir.get(), loc->name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return {};
    return errno_error("stat of " + key, false);
  }
  // Only what a listing shows is an object: a directory or an unfollowed symlink is not one.
  const bool object = S_ISREG(st.st_mode) || (S_ISLNK(st.st_mode) && follow);
  if (!object) return {};
  if (::unlinkat(loc->dir.get(), loc->name.c_str(), 0) != 0 && errno != ENOENT)
    return errno_error("removing " + key, false);
  return {};
}

// Removes the directories (keys of directories under the root) that are empty, deepest first, so
// a parent emptied by its child's removal goes too. Best effort: a directory that is not empty,
// gone, or reached through a symlink stays (never anything outside the root).
void remove_empty_dirs(const fs::path& root, const std::set<std::string>& dirs) {
  // A directory's key sorts before every key under it: backwards, children come first.
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    auto loc = locate(root, *it, walk_mode::read, /*follow=*/false, false);
    if (!loc) continue;
    if (::unlinkat(loc->dir.get(), loc->name.c_str(), AT_REMOVEDIR) == 0) continue;
    const int err = errno;
    if (err != ENOTEMPTY && err != EEXIST && err != ENOENT && err != ENOTDIR && err != EBUSY)
      spdlog::debug("store: cannot remove empty directory {}/{}: {}", root.string(), *it,
                    std::generic_category().message(err));
  }
}

error source_changed(std::string_view key, std::string_view how) {
  return make_error("SourceChanged", std::string(key) + " changed while it was read (" + std::string(how) + ")", 0,
                    true);
}

class local_reader final : public object_reader {
 public:
  local_reader(blocking_pool& pool, unique_fd fd, object_info info, std::uint64_t first, std::uint64_t end)
      : pool_(pool), fd_(std::move(fd)), info_(std::move(info)), pos_(first), end_(end) {}
  ~local_reader() override {
    if (fd_) pool_.detach([fd = std::move(fd_)]() mutable { fd.reset(); });
  }

  const object_info& info() const override { return info_; }

  asio::awaitable<result<std::size_t>> read_some(std::span<char> buf) override {
    if (done_ || buf.empty()) co_return std::size_t{0};
    if (pos_ == end_) {
      // The whole range is read: it is one version of the file only if nothing changed meanwhile.
      auto check = [this] { return unchanged(); };
      auto same = co_await run_blocking(pool_, std::move(check));
      if (!same) co_return same.error();
      done_ = true;
      co_return std::size_t{0};
    }
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), end_ - pos_));
    auto op = [this, data = buf.data(), want]() -> result<std::size_t> {
      for (;;) {
        const auto r = ::pread(fd_.get(), data, want, static_cast<off_t>(pos_));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return errno_error("reading " + info_.key, false);
        return static_cast<std::size_t>(r);
      }
    };
    auto n = co_await run_blocking(pool_, std::move(op));
    if (!n) co_return n.error();
    if (*n == 0) co_return source_changed(info_.key, "it is shorter than when opened");
    pos_ += *n;
    co_return *n;
  }

 private:
  result<void> unchanged() const {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) return errno_error("stat of " + info_.key, false);
    if (static_cast<std::uint64_t>(st.st_size) != info_.size) return source_changed(info_.key, "size differs");
    if (to_time_point(st.st_mtim) != info_.mtime) return source_changed(info_.key, "mtime differs");
    return {};
  }

  blocking_pool& pool_;
  unique_fd fd_;
  object_info info_;
  std::uint64_t pos_, end_;  // [pos_, end_) is left to read
  bool done_ = false;
};

// ---------------------------------------------------------------------------------------------
// Multipart

class local_multipart final : public multipart_writer {
 public:
  local_multipart(blocking_pool& pool, std::unique_ptr<staged_file> f, std::string key,
                  std::optional<sys_clock::time_point> mtime, bool sync)
      : pool_(pool),
        file_(pool, std::move(f)),
        id_(file_.get()->tmp_path),
        key_(std::move(key)),
        mtime_(mtime),
        sync_(sync) {}

  const std::string& id() const override { return id_; }

  asio::awaitable<result<std::string>> write_part(int part_number, std::uint64_t offset,
                                                  std::shared_ptr<const std::string> data,
                                                  std::string content_md5) override {
    if (part_number < 1 || part_number > max_part_number)
      co_return make_error("InvalidArgument", "part number " + std::to_string(part_number) + " is out of range", 400);
    if (!data) co_return make_error("InvalidArgument", "write_part without data", 400);
    std::optional<std::vector<std::uint8_t>> md5;
    if (!content_md5.empty()) {
      md5 = decode_digest(content_md5, 16);
      if (!md5) co_return make_error("InvalidDigest", "Content-MD5 is not a base64 MD5: " + content_md5, 400);
    }
    if (auto open = check_open(); !open) co_return open.error();
    auto* f = file_.get();
    auto op = [f, offset, data, md5 = std::move(md5), part_number]() -> result<void> {
      if (md5) {
        const auto got = util::md5(*data);
        if (!std::equal(got.begin(), got.end(), md5->begin(), md5->end()))
          return make_error("BadDigest", "part " + std::to_string(part_number) + ": Content-MD5 does not match", 400);
      }
      return f->write_all(offset, data->data(), data->size());
    };
    auto written = co_await run_blocking(pool_, std::move(op));
    if (!written) co_return written.error();
    std::lock_guard lock(m_);
    parts_[part_number] = {offset, data->size()};
    co_return std::string();
  }

  asio::awaitable<result<write_result>> complete(const std::vector<s3::part_info>& parts) override {
    std::uint64_t total = 0;
    {
      std::lock_guard lock(m_);
      if (state_ != state::open) co_return no_upload();
      auto covered = coverage(parts);
      if (!covered) co_return covered.error();
      total = *covered;
      state_ = state::completing;
    }
    auto* f = file_.get();
    auto op = [f, total, mtime = mtime_, sync = sync_]() -> result<void> {
      // Bytes of parts written but not listed may lie past the end.
      if (::ftruncate(f->fd.get(), static_cast<off_t>(total)) != 0)
        return errno_error("truncating " + f->tmp_path, false);
      return f->commit(mtime, sync);
    };
    auto done = co_await run_blocking(pool_, std::move(op));
    std::lock_guard lock(m_);
    // A failed rename leaves the temp file for abort() or the destructor, as S3 keeps the upload.
    state_ = f->finished ? state::closed : state::open;
    if (!done) co_return done.error();
    co_return write_result{};
  }

  asio::awaitable<result<std::vector<s3::part_info>>> uploaded_parts() override {
    co_return not_supported("listing the parts of a local upload");
  }

  asio::awaitable<result<void>> abort() override {
    {
      std::lock_guard lock(m_);
      if (state_ == state::completing) co_return make_error("InvalidRequest", "abort during complete", 409);
      if (state_ == state::closed) co_return result<void>();
      state_ = state::closed;
    }
    auto* f = file_.get();
    auto op = [f]() -> result<void> {
      f->discard();
      return {};
    };
    co_return co_await run_blocking(pool_, std::move(op));
  }

 private:
  enum class state { open, completing, closed };

  error no_upload() const { return make_error("NoSuchUpload", "upload " + id_ + " is complete or aborted", 404); }

  result<void> check_open() {
    std::lock_guard lock(m_);
    if (state_ != state::open) return no_upload();
    return {};
  }

  // The object's size if `parts` tile [0, size) in part-number order; called under m_.
  result<std::uint64_t> coverage(const std::vector<s3::part_info>& parts) const {
    if (parts.empty()) return make_error("InvalidPart", "complete " + key_ + ": no parts", 400);
    for (std::size_t i = 1; i < parts.size(); ++i)
      if (parts[i].part_number <= parts[i - 1].part_number)
        return make_error("InvalidPartOrder", "complete " + key_ + ": part numbers are not ascending", 400);
    std::uint64_t next = 0;
    for (const auto& p : parts) {
      auto it = parts_.find(p.part_number);
      if (it == parts_.end())
        return make_error("InvalidPart",
                          "complete " + key_ + ": part " + std::to_string(p.part_number) + " was never written", 400);
      const auto [offset, size] = it->second;
      if (p.size != 0 && p.size != size)
        return make_error("InvalidPart",
                          "complete " + key_ + ": part " + std::to_string(p.part_number) + " has " +
                              std::to_string(size) + " bytes, not " + std::to_string(p.size),
                          400);
      if (offset != next)
        return make_error("InvalidPart",
                          "complete " + key_ + ": part " + std::to_string(p.part_number) + " starts at " +
                              std::to_string(offset) + ", not " + std::to_string(next) + " (a gap or an overlap)",
                          400);
      next += size;
    }
    // A part written but left out must not have overwritten bytes of the listed ones.
    for (const auto& [number, range] : parts_) {
      const bool listed =
          std::any_of(parts.begin(), parts.end(), [n = number](const auto& p) { return p.part_number == n; });
      if (!listed && range.second > 0 && range.first < next)
        return make_error("InvalidPart",
                          "complete " + key_ + ": unlisted part " + std::to_string(number) + " overlaps the object",
                          400);
    }
    return next;
  }

  blocking_pool& pool_;
  staged_guard file_;
  std::string id_, key_;
  std::optional<sys_clock::time_point> mtime_;
  bool sync_;
  std::mutex m_;  // parts arrive from several coroutines, possibly on several io threads
  std::map<int, std::pair<std::uint64_t, std::uint64_t>> parts_;  // number -> (offset, size)
  state state_ = state::open;
};

// ---------------------------------------------------------------------------------------------
// The endpoint

class local_endpoint final : public endpoint {
 public:
  local_endpoint(fs::path root, blocking_pool& pool, local_options opts)
      : root_(std::move(root)), pool_(pool), opts_(opts) {}

  std::string describe() const override { return root_.string(); }
  bool is_local() const override { return true; }

  std::unique_ptr<lister> list() override { return std::make_unique<local_lister>(root_, pool_, opts_); }

  asio::awaitable<result<object_info>> stat(std::string_view key_in) override {
    std::string key(key_in);
    if (auto ok = check_local_key(key); !ok) co_return ok.error();
    auto op = [this, key]() -> result<object_info> {
      auto loc = locate(root_, key, walk_mode::read, opts_.follow_symlinks, false);
      if (!loc) return loc.error();
      struct stat st {};
      const int flags = opts_.follow_symlinks ? 0 : AT_SYMLINK_NOFOLLOW;
      if (::fstatat(loc->dir.get(), loc->name.c_str(), &st, flags) != 0) return errno_error("stat of " + key, true);
      if (!S_ISREG(st.st_mode)) return make_error("NoSuchKey", key + " is not a regular file", 404);
      return info_from_stat(key, st);
    };
    co_return co_await run_blocking(pool_, std::move(op));
  }

  asio::awaitable<result<std::unique_ptr<object_reader>>> read(std::string_view key_in, std::optional<byte_range> range,
                                                               std::string_view /*if_match: no ETags here*/) override {
    std::string key(key_in);
    if (auto ok = check_local_key(key); !ok) co_return ok.error();
    if (range && range->last < range->first) co_return make_error("InvalidRange", "read " + key + ": empty range", 416);
    auto open = [this, key] { return open_regular(root_, key, opts_.follow_symlinks); };
    auto opened = co_await run_blocking(pool_, std::move(open));
    if (!opened) co_return opened.error();
    auto info = info_from_stat(key, opened->st);
    std::uint64_t first = 0, end = info.size;
    if (range) {
      // As S3: a range starting past the end is refused, one running past it is shortened.
      if (range->first >= info.size)
        co_return make_error("InvalidRange",
                             "read " + key + ": range starts past the end (" + std::to_string(info.size) + " bytes)",
                             416);
      first = range->first;
      end = std::min(range->last, info.size - 1) + 1;
    }
    std::unique_ptr<object_reader> reader =
        std::make_unique<local_reader>(pool_, std::move(opened->fd), std::move(info), first, end);
    co_return reader;
  }

  asio::awaitable<result<write_result>> write(std::string_view key_in, http::body_source body, std::uint64_t size,
                                              const write_options& opts) override {
    std::string key(key_in);
    if (auto ok = check_local_key(key); !ok) co_return ok.error();
    auto expected = expected_digests::from(opts);
    if (!expected) co_return expected.error();
    const auto mtime = opts.mtime;
    auto create = [this, key] { return staged_file::create(root_, key, opts_.follow_symlinks, opts_.fsync); };
    auto created = co_await run_blocking(pool_, std::move(create));
    if (!created) co_return created.error();
    staged_guard guard(pool_, std::move(*created));
    auto* f = guard.get();

    auto filled = co_await fill(*f, body, size, *expected, key);
    if (filled) {
      auto commit = [f, mtime, sync = opts_.fsync] { return f->commit(mtime, sync); };
      filled = co_await run_blocking(pool_, std::move(commit));
    }
    if (!filled) {
      // Removed before answering: a failed write leaves nothing behind.
      auto discard = [f] {
        f->discard();
        return true;
      };
      co_await run_blocking(pool_, std::move(discard));
      co_return filled.error();
    }
    co_return write_result{};
  }

  asio::awaitable<result<std::unique_ptr<multipart_writer>>> begin_multipart(std::string_view key_in,
                                                                             const write_options& opts) override {
    std::string key(key_in);
    if (auto ok = check_local_key(key); !ok) co_return ok.error();
    auto create = [this, key] { return staged_file::create(root_, key, opts_.follow_symlinks, opts_.fsync); };
    auto created = co_await run_blocking(pool_, std::move(create));
    if (!created) co_return created.error();
    std::unique_ptr<multipart_writer> w =
        std::make_unique<local_multipart>(pool_, std::move(*created), std::move(key), opts.mtime, opts_.fsync);
    co_return w;
  }

  asio::awaitable<result<std::unique_ptr<multipart_writer>>> resume_multipart(std::string_view /*key*/,
                                                                              std::string /*upload_id*/) override {
    co_return not_supported("resuming a local upload");
  }

  // Nothing to abort but the temp file a crashed writer may have left: removed when `upload_id`
  // names one beside the key (the writer's id() is that path).
  asio::awaitable<result<void>> abort_multipart(std::string_view key_in, std::string upload_id) override {
    std::string key(key_in);
    if (auto ok = check_local_key(key); !ok) co_return ok.error();
    const auto slash = key.rfind('/');
    std::string tmp_name = fs::path(upload_id).filename().string();
    // The path staged_file::create() gives its temp file, and nothing else.
    const auto expected = root_ / (slash == std::string::npos ? std::string() : key.substr(0, slash)) / tmp_name;
    if (!tmp_name.starts_with(temp_file_prefix) || expected.string() != upload_id) co_return result<void>();
    auto op = [this, key, tmp_name]() -> result<void> {
      auto loc = locate(root_, key, walk_mode::read, opts_.follow_symlinks, false);
      if (!loc) return {};  // no directory, no temp file
      if (::unlinkat(loc->dir.get(), tmp_name.c_str(), 0) != 0 && errno != ENOENT)
        return errno_error("removing the temp file " + tmp_name + " of " + key, false);
      return {};
    };
    co_return co_await run_blocking(pool_, std::move(op));
  }

  asio::awaitable<result<void>> remove(std::string_view key_in) override {
    std::string key(key_in);
    if (auto ok = check_local_key(key); !ok) co_return ok.error();
    auto op = [this, key] { return remove_file(root_, key, opts_.follow_symlinks); };
    co_return co_await run_blocking(pool_, std::move(op));
  }

  asio::awaitable<result<std::vector<std::pair<std::string, error>>>> remove_many(
      std::vector<std::string> keys) override {
    std::vector<std::pair<std::string, error>> failed;
    for (std::size_t start = 0; start < keys.size(); start += remove_chunk_keys) {
      const auto end = std::min(keys.size(), start + remove_chunk_keys);
      auto op = [this, &keys, start, end] {
        std::vector<std::pair<std::string, error>> out;
        std::set<std::string> dirs;
        for (auto i = start; i < end; ++i) {
          auto& key = keys[i];
          auto removed = remove_file(root_, key, opts_.follow_symlinks);
          if (!removed) {
            out.emplace_back(std::move(key), removed.error());
            continue;
          }
          // Valid keys have no empty component: every '/' ends the key of a directory.
          for (auto slash = key.rfind('/'); slash != std::string::npos && slash > 0; slash = key.rfind('/', slash - 1))
            if (!dirs.insert(key.substr(0, slash)).second) break;  // its parents are in already
        }
        remove_empty_dirs(root_, dirs);
        return out;
      };
      auto chunk = co_await run_blocking(pool_, std::move(op));
      std::move(chunk.begin(), chunk.end(), std::back_inserter(failed));
    }
    co_return failed;
  }

 private:
  // Streams the body into the staged file, exactly `size` bytes, checking the digests.
  asio::awaitable<result<void>> fill(staged_file& f, http::body_source& body, std::uint64_t size,
                                     const expected_digests& expected, const std::string& key) {
    const auto chunk = static_cast<std::size_t>(std::clamp<std::uint64_t>(size, 1, write_chunk_bytes));
    auto buf = std::make_unique_for_overwrite<char[]>(chunk);
    util::md5_hasher md5;
    util::crc32c_hasher crc;
    const bool want_md5 = expected.md5.has_value(), want_crc = expected.crc32c.has_value();
    std::uint64_t written = 0;
    while (written < size) {
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, size - written));
      std::size_t got = 0;
      while (got < want) {
        auto n = co_await body(std::span<char>(buf.get() + got, want - got));
        if (!n) co_return s3::transport_error(n.error(), "writing " + key + ": reading the source");
        if (*n == 0 || *n > want - got)
          co_return make_error("BodySizeMismatch",
                               "writing " + key + ": the source gave " + std::to_string(written + got + *n) +
                                   " bytes, not " + std::to_string(size),
                               0, true);
        got += *n;
      }
      auto op = [&, data = buf.get(), got, offset = written] {
        const std::string_view bytes(data, got);
        if (want_md5) md5.update(bytes);
        if (want_crc) crc.update(bytes);
        return f.write_all(offset, data, got);
      };
      auto w = co_await run_blocking(pool_, std::move(op));
      if (!w) co_return w.error();
      written += got;
    }
    if (want_md5) {
      const auto d = md5.finish();
      if (!std::equal(d.begin(), d.end(), expected.md5->begin(), expected.md5->end()))
        co_return make_error("BadDigest", "writing " + key + ": the Content-MD5 you specified did not match", 400);
    }
    if (want_crc) {
      const auto d = crc.big_endian();
      if (!std::equal(d.begin(), d.end(), expected.crc32c->begin(), expected.crc32c->end()))
        co_return make_error("BadDigest", "writing " + key + ": the CRC32C you specified did not match", 400);
    }
    co_return result<void>();
  }

  fs::path root_;
  blocking_pool& pool_;
  local_options opts_;
};

}  // namespace

std::unique_ptr<endpoint> make_local_endpoint(std::filesystem::path root, blocking_pool& pool, local_options opts) {
  return std::make_unique<local_endpoint>(std::move(root), pool, opts);
}

result<void> check_local_key(std::string_view key) {
  auto segs = split_key(key);
  if (!segs) return segs.error();
  return {};
}

std::string_view guess_content_type(std::string_view key) {
  struct type {
    std::string_view ext, mime;
  };
  static constexpr std::array<type, 22> types{{
      {"bin", "application/octet-stream"},
      {"css", "text/css"},
      {"csv", "text/csv"},
      {"gif", "image/gif"},
      {"gz", "application/gzip"},
      {"htm", "text/html"},
      {"html", "text/html"},
      {"jpeg", "image/jpeg"},
      {"jpg", "image/jpeg"},
      {"js", "text/javascript"},
      {"json", "application/json"},
      {"mp3", "audio/mpeg"},
      {"mp4", "video/mp4"},
      {"pdf", "application/pdf"},
      {"png", "image/png"},
      {"svg", "image/svg+xml"},
      {"tar", "application/x-tar"},
      {"txt", "text/plain"},
      {"wav", "audio/wav"},
      {"webp", "image/webp"},
      {"xml", "application/xml"},
      {"zip", "application/zip"},
  }};
  const auto ext = extension_of(key);
  if (ext.empty() || ext.size() > 8) return "application/octet-stream";
  std::string lower(ext);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& t : types)
    if (t.ext == lower) return t.mime;
  return "application/octet-stream";
}

}  // namespace ferry::store
