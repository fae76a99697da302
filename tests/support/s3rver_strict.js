#!/usr/bin/env node
'use strict';
// s3rver 3.7.1, made to behave like S3 where Ferry's correctness is at stake, so tests can trust it.
// s3rver alone: accepts any SigV4 signature ("Signature version 4 calculation is unimplemented") and anonymous
// requests; ignores Content-MD5 and x-amz-content-sha256; lists keys in directory-walk order (not UTF-8 byte
// order, so pages can skip keys) and drops common prefixes whose objects all sit two or more levels deeper;
// answers PUT before the file is written; accepts any part list on CompleteMultipartUpload and returns a
// whole-object MD5 as its ETag; has no AbortMultipartUpload; fails every truncated ListObjectsV2. Here:
// - SigV4 (header and presigned) is verified with the account's secret; a mismatch returns the
//   CanonicalRequest and StringToSign we computed, as AWS does. x-amz-* headers must be signed; the scope must
//   name this server's region and "s3". Unsigned requests are refused. SigV2 is left to s3rver, which checks it.
// - Content-MD5 and a hex x-amz-content-sha256 are checked against the body (BadDigest,
//   XAmzContentSHA256Mismatch); nothing is stored on a mismatch. aws-chunked bodies are refused.
// - Listings are in UTF-8 byte order with correct common prefixes and pagination.
// - Objects and parts are fully written (temp file + rename) before the response.
// - CompleteMultipartUpload checks part order, ETags and the minimum part size; the ETag is
//   MD5(part MD5s)-N. AbortMultipartUpload works; parts of unknown uploads are NoSuchUpload.
// - Truncated ListObjectsV2 works (s3rver's DES continuation tokens fail on OpenSSL 3).
// - If-Match on GET/HEAD and x-amz-copy-source-if-match are honoured (412 PreconditionFailed).
// - x-amz-copy-source is fully URL-decoded, as S3 does (s3rver's decodeURI missed %23, %2B, %3F...).
//
// Usage: node s3rver_strict.js -d DIR [-a ADDR] [-p PORT] [-s] [--key F --cert F] [--region R] [--extra-key ID:SECRET]
//                              [--max-body-bytes N] [--min-part-size N]
// Prints "S3rver listening on ADDR:PORT" on stdout once it accepts connections (-p 0 picks a free port).

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { PassThrough, Readable, Transform, pipeline } = require('stream');

const S3rver = require('s3rver');
const AWSAccount = require('s3rver/lib/models/account');
const S3Error = require('s3rver/lib/models/error');
const S3Object = require('s3rver/lib/models/object');
const FilesystemStore = require('s3rver/lib/stores/filesystem');
const { concatStreams } = require('s3rver/lib/utils');

function parse_args(argv) {
  const opts = {
    directory: undefined,
    address: '127.0.0.1',
    port: 0,
    silent: false,
    key: undefined,
    cert: undefined,
    region: 'us-east-1',
    maxBodyBytes: 1024 * 1024 * 1024,
    minPartSize: 5 * 1024 * 1024,
    extraKeys: [],
  };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`);
      return argv[++i];
    };
    switch (a) {
      case '-d': case '--directory': opts.directory = value(); break;
      case '-a': case '--address': opts.address = value(); break;
      case '-p': case '--port': opts.port = Number(value()); break;
      case '-s': case '--silent': opts.silent = true; break;
      case '--key': opts.key = fs.readFileSync(value()); break;
      case '--cert': opts.cert = fs.readFileSync(value()); break;
      case '--region': opts.region = value(); break;
      case '--max-body-bytes': opts.maxBodyBytes = Number(value()); break;
      case '--min-part-size': opts.minPartSize = Number(value()); break;
      case '--extra-key': {  // ID:SECRET, another key pair of the same account (tests use distinctive secrets)
        const v = value();
        const colon = v.indexOf(':');
        if (colon <= 0) throw new Error('--extra-key takes ID:SECRET');
        opts.extraKeys.push([v.slice(0, colon), v.slice(colon + 1)]);
        break;
      }
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (!opts.directory) throw new Error('-d DIR is required');
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new Error('bad --port');
  return opts;
}

function s3_error(code, message, detail = {}, status = undefined) {
  const err = new S3Error(code, message, detail);
  if (status !== undefined) {
    err.status = status;
    err.expose = status < 500;
  }
  return err;
}

// RFC 3986 unreserved characters stay, everything else is %XX (upper case), as SigV4 requires.
function uri_encode(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, c => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

function uri_decode(s) {
  try {
    return decodeURIComponent(s);
  } catch (e) {
    throw s3_error('InvalidURI', 'Couldn\'t parse the specified URI.');
  }
}

function sha256_hex(data) {
  return crypto.createHash('sha256').update(data).digest('hex');
}

function hmac(key, data) {
  return crypto.createHmac('sha256', key).update(data, 'utf8').digest();
}

function canonical_uri(raw_path) {
  // S3 does not normalise paths: each segment is decoded and re-encoded, empty segments stay.
  return raw_path.split('/').map(seg => uri_encode(uri_decode(seg))).join('/') || '/';
}

function parse_query(raw_query) {
  const pairs = [];
  for (const part of raw_query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq);
    const v = eq < 0 ? '' : part.slice(eq + 1);
    pairs.push([uri_decode(k), uri_decode(v)]);
  }
  return pairs;
}

function canonical_query(pairs, exclude) {
  return pairs
    .filter(([k]) => k !== exclude)
    .map(([k, v]) => [uri_encode(k), uri_encode(v)])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

// Header values as sent (rawHeaders keeps repeats apart), trimmed, inner whitespace runs collapsed.
function header_map(raw_headers) {
  const map = new Map();
  for (let i = 0; i + 1 < raw_headers.length; i += 2) {
    const name = raw_headers[i].toLowerCase();
    const value = raw_headers[i + 1].trim().replace(/\s+/g, ' ');
    if (!map.has(name)) map.set(name, []);
    map.get(name).push(value);
  }
  return map;
}

function parse_credential(credential, amz_date, region) {
  const parts = credential.split('/');
  if (parts.length !== 5 || parts[4] !== 'aws4_request') {
    throw s3_error('AuthorizationHeaderMalformed', `The credential '${credential}' is malformed.`);
  }
  const [access_key_id, date, scope_region, service] = parts;
  if (!/^\d{8}T\d{6}Z$/.test(amz_date)) {
    throw s3_error('AccessDenied', 'AWS authentication requires a valid x-amz-date (YYYYMMDDTHHMMSSZ)');
  }
  if (date !== amz_date.slice(0, 8)) {
    throw s3_error('AuthorizationHeaderMalformed',
                   `The credential date '${date}' does not match the request date '${amz_date}'.`);
  }
  if (scope_region !== region) {
    throw s3_error('AuthorizationHeaderMalformed',
                   `The authorization header is malformed; the region '${scope_region}' is wrong; ` +
                       `expecting '${region}'`,
                   { Region: region });
  }
  if (service !== 's3') {
    throw s3_error('AuthorizationHeaderMalformed', `The service '${service}' is wrong; expecting 's3'.`);
  }
  const account = AWSAccount.registry.get(access_key_id);
  if (!account) {
    throw s3_error('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.',
                   { AWSAccessKeyId: access_key_id }, 403);
  }
  return { access_key_id, secret: account.accessKeys.get(access_key_id), scope: parts.slice(1).join('/'), date };
}

function verify_sigv4(ctx, region) {
  const req = ctx.req;
  const qpos = req.url.indexOf('?');
  const raw_path = qpos < 0 ? req.url : req.url.slice(0, qpos);
  const query = parse_query(qpos < 0 ? '' : req.url.slice(qpos + 1));
  const headers = header_map(req.rawHeaders);
  const header = name => (headers.has(name) ? headers.get(name).join(',') : undefined);
  const qget = name => {
    const hit = query.find(([k]) => k === name);
    return hit ? hit[1] : undefined;
  };

  let credential, signed_headers, signature, amz_date, payload_hash, excluded_param;
  const auth = header('authorization');
  if (auth !== undefined) {
    const m = /^AWS4-HMAC-SHA256 (.*)$/.exec(auth);
    const fields = new Map();
    for (const f of m[1].split(',')) {
      const eq = f.indexOf('=');
      if (eq > 0) fields.set(f.slice(0, eq).trim(), f.slice(eq + 1).trim());
    }
    credential = fields.get('Credential');
    signed_headers = fields.get('SignedHeaders');
    signature = fields.get('Signature');
    if (!credential || !signed_headers || !signature) {
      throw s3_error('AuthorizationHeaderMalformed',
                     'The authorization header requires Credential, SignedHeaders and Signature.');
    }
    amz_date = header('x-amz-date') || '';
    payload_hash = header('x-amz-content-sha256');
    if (payload_hash === undefined) {
      throw s3_error('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
    }
  } else {
    credential = qget('X-Amz-Credential');
    signed_headers = qget('X-Amz-SignedHeaders');
    signature = qget('X-Amz-Signature');
    amz_date = qget('X-Amz-Date') || '';
    const expires = Number(qget('X-Amz-Expires'));
    if (!credential || !signed_headers || !signature || !Number.isInteger(expires) || expires < 1 ||
        expires > 604800) {
      throw s3_error('AuthorizationQueryParametersError',
                     'X-Amz-Credential, X-Amz-SignedHeaders, X-Amz-Signature, X-Amz-Date and a valid ' +
                         'X-Amz-Expires are required.');
    }
    const t = Date.UTC(+amz_date.slice(0, 4), +amz_date.slice(4, 6) - 1, +amz_date.slice(6, 8),
                       +amz_date.slice(9, 11), +amz_date.slice(11, 13), +amz_date.slice(13, 15));
    if (!(Date.now() <= t + expires * 1000)) throw s3_error('AccessDenied', 'Request has expired');
    payload_hash = qget('X-Amz-Content-Sha256') || header('x-amz-content-sha256') || 'UNSIGNED-PAYLOAD';
    excluded_param = 'X-Amz-Signature';
  }

  const cred = parse_credential(credential, amz_date, region);
  const signed = signed_headers.split(';');
  if (signed.some(h => h !== h.toLowerCase()) || signed.join(';') !== [...signed].sort().join(';')) {
    throw s3_error('AuthorizationHeaderMalformed', 'SignedHeaders must be lower case and sorted.');
  }
  if (!signed.includes('host')) {
    throw s3_error('AuthorizationHeaderMalformed', 'The host header must be signed.');
  }
  for (const name of signed) {
    if (!headers.has(name)) {
      throw s3_error('AccessDenied', `The signed header '${name}' is not in the request.`);
    }
  }
  const unsigned_amz = [...headers.keys()].filter(h => h.startsWith('x-amz-') && !signed.includes(h));
  if (auth !== undefined && unsigned_amz.length) {
    throw s3_error('AccessDenied', 'There were headers present in the request which were not signed',
                   { HeadersNotSigned: unsigned_amz.join(', ') });
  }

  const canonical_request = [
    req.method,
    canonical_uri(raw_path),
    canonical_query(query, excluded_param),
    signed.map(h => `${h}:${headers.get(h).join(',')}\n`).join(''),
    signed_headers,
    payload_hash,
  ].join('\n');
  const string_to_sign = ['AWS4-HMAC-SHA256', amz_date, cred.scope, sha256_hex(canonical_request)].join('\n');
  let key = hmac('AWS4' + cred.secret, cred.date);
  for (const part of cred.scope.split('/').slice(1)) key = hmac(key, part);
  const expected = crypto.createHmac('sha256', key).update(string_to_sign, 'utf8').digest('hex');
  const ok = expected.length === signature.length &&
             crypto.timingSafeEqual(Buffer.from(expected), Buffer.from(signature));
  if (!ok) {
    throw s3_error('SignatureDoesNotMatch',
                   'The request signature we calculated does not match the signature you provided. ' +
                       'Check your key and signing method.',
                   { AWSAccessKeyId: cred.access_key_id, StringToSign: string_to_sign,
                     CanonicalRequest: canonical_request });
  }
  return payload_hash;
}

async function read_body(req, limit) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) {
      throw s3_error('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size',
                     { MaxSizeAllowed: limit });
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

// s3rver's controllers read ctx.req as a stream; after buffering, give them a stream over the same bytes
// that still answers for the request's headers, method, url and socket.
function replace_request_stream(ctx, body) {
  const req = ctx.req;
  const replay = new PassThrough();
  for (const k of ['headers', 'rawHeaders', 'trailers', 'rawTrailers', 'method', 'url', 'httpVersion',
                   'httpVersionMajor', 'httpVersionMinor', 'socket', 'connection', 'complete']) {
    replay[k] = req[k];
  }
  replay.end(body);
  ctx.req = ctx.request.req = ctx.response.req = replay;
}

function strict_middleware(region, max_body_bytes, store) {
  return async function strict(ctx, next) {
    const headers = ctx.req.headers;
    const auth = headers['authorization'];
    const presigned_v4 = /[?&]X-Amz-Algorithm=/.test(ctx.req.url);
    const v2 = (auth !== undefined && /^AWS /.test(auth)) || /[?&]Signature=/.test(ctx.req.url);
    let payload_hash = 'UNSIGNED-PAYLOAD';
    if (auth !== undefined && /^AWS4-HMAC-SHA256 /.test(auth)) {
      payload_hash = verify_sigv4(ctx, region);
    } else if (presigned_v4 && auth === undefined) {
      payload_hash = verify_sigv4(ctx, region);
    } else if (!v2) {
      if (auth !== undefined) throw s3_error('InvalidArgument', 'Unsupported Authorization Type');
      throw s3_error('AccessDenied', 'Access Denied: this server refuses anonymous requests.');
    }

    if (/^STREAMING-/.test(payload_hash)) {
      throw s3_error('NotImplemented', `x-amz-content-sha256 ${payload_hash} is not supported by this test server`);
    }
    if (payload_hash !== 'UNSIGNED-PAYLOAD' && !/^[0-9a-f]{64}$/.test(payload_hash)) {
      throw s3_error('InvalidArgument',
                     'x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a lower-case hex SHA-256 value.',
                     { ArgumentName: 'x-amz-content-sha256', ArgumentValue: payload_hash });
    }
    const content_md5 = headers['content-md5'];
    let md5_expected;
    if (content_md5 !== undefined) {
      md5_expected = Buffer.from(content_md5, 'base64');
      if (md5_expected.length !== 16 || md5_expected.toString('base64') !== content_md5.trim()) {
        throw s3_error('InvalidDigest', 'The Content-MD5 you specified was invalid.');
      }
    }
    if (payload_hash !== 'UNSIGNED-PAYLOAD' || md5_expected !== undefined) {
      const body = await read_body(ctx.req, max_body_bytes);
      if (payload_hash !== 'UNSIGNED-PAYLOAD') {
        const actual = sha256_hex(body);
        if (actual !== payload_hash) {
          throw s3_error('XAmzContentSHA256Mismatch',
                         'The provided \'x-amz-content-sha256\' header does not match what was computed.',
                         { ClientComputedContentSHA256: payload_hash, S3ComputedContentSHA256: actual }, 400);
        }
      }
      if (md5_expected !== undefined) {
        const actual = crypto.createHash('md5').update(body).digest();
        if (!actual.equals(md5_expected)) {
          throw s3_error('BadDigest', 'The Content-MD5 you specified did not match what we received.',
                         { ExpectedDigest: md5_expected.toString('hex'), CalculatedDigest: actual.toString('hex') });
        }
      }
      replace_request_stream(ctx, body);
    }
    if (ctx.method === 'DELETE' && 'uploadId' in ctx.query && (await abort_multipart_upload(ctx, store))) return;
    if (ctx.method === 'GET' && 'uploadId' in ctx.query && (await list_parts(ctx, store))) return;
    await check_preconditions(ctx, store);
    normalize_copy_source(ctx);
    return next();
  };
}

const OBJECT_SUFFIX = '._S3rver_object';

function utf8_compare(a, b) {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function* walk_files(dir) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return;
    throw e;
  }
  for (const entry of entries) {
    const p = path.posix.join(dir, entry.name);
    if (entry.isDirectory()) {
      yield* walk_files(p);
    } else {
      yield p;
    }
  }
}

// Streams `content` to `final_path` through a temp file, renamed only once every byte is on disk.
function write_file_atomically(content, final_path) {
  return new Promise((resolve, reject) => {
    const tmp = `${final_path}.tmp-${crypto.randomBytes(6).toString('hex')}`;
    const md5 = crypto.createHash('md5');
    let size = 0;
    const source = Buffer.isBuffer(content) ? Readable.from([content]) : content;
    const hasher = new Transform({
      transform(chunk, encoding, callback) {
        md5.update(chunk);
        size += chunk.length;
        callback(null, chunk);
      },
    });
    pipeline(source, hasher, fs.createWriteStream(tmp), err => {
      if (err) {
        fs.rm(tmp, { force: true }, () => reject(err));
        return;
      }
      fs.rename(tmp, final_path, rename_err => (rename_err ? reject(rename_err) : resolve({ size, md5: md5.digest('hex') })));
    });
  });
}

function upload_dir(store, bucket, upload_id) {
  if (!/^[0-9A-Za-z_-]{1,128}$/.test(upload_id || '')) {
    throw s3_error('NoSuchUpload', 'The specified upload does not exist.', { UploadId: String(upload_id) });
  }
  return path.join(store.getResourcePath(bucket, undefined, 'uploads'), upload_id);
}

function require_upload(dir, upload_id) {
  if (!fs.existsSync(path.join(dir, 'key'))) {
    throw s3_error('NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the ' +
                   'upload may have been aborted or completed.', { UploadId: upload_id });
  }
}

function patch_store(min_part_size) {
  const proto = FilesystemStore.prototype;

  proto.putObject = async function put_object(object, etag = undefined) {
    const object_path = this.getResourcePath(object.bucket, object.key, 'object');
    await fs.promises.mkdir(path.dirname(object_path), { recursive: true });
    const { size, md5 } = await write_file_atomically(object.content, object_path);
    await this.putMetadata(object.bucket, object.key, object.metadata, etag || md5);
    return { size, md5: etag || md5 };
  };

  proto.putPart = async function put_part(bucket, upload_id, part_number, content) {
    const dir = upload_dir(this, bucket, upload_id);
    require_upload(dir, upload_id);
    const n = Number(part_number);
    if (!Number.isInteger(n) || n < 1 || n > 10000) {
      throw s3_error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive',
                     { ArgumentName: 'partNumber', ArgumentValue: String(part_number) });
    }
    const part_path = path.join(dir, String(n));
    const { size, md5 } = await write_file_atomically(content, part_path);
    await fs.promises.writeFile(`${part_path}.md5`, md5);
    return { size, md5 };
  };

  proto.putObjectMultipart = async function put_object_multipart(bucket, upload_id, parts) {
    const dir = upload_dir(this, bucket, upload_id);
    require_upload(dir, upload_id);
    const key = fs.readFileSync(path.join(dir, 'key')).toString();
    const metadata = JSON.parse(fs.readFileSync(path.join(dir, 'metadata')).toString());
    const digests = [];
    for (let i = 0; i < parts.length; ++i) {
      const { number, etag } = parts[i];
      if (i > 0 && !(number > parts[i - 1].number)) {
        throw s3_error('InvalidPartOrder', 'The list of parts was not in ascending order. Parts must be ordered ' +
                       'by part number.', { UploadId: upload_id });
      }
      const part_path = path.join(dir, String(number));
      let md5;
      try {
        md5 = fs.readFileSync(`${part_path}.md5`).toString();
      } catch (e) {
        md5 = undefined;
      }
      if (md5 === undefined || md5 !== etag) {
        throw s3_error('InvalidPart', 'One or more of the specified parts could not be found. The part might not ' +
                       'have been uploaded, or the specified entity tag might not have matched the part\'s entity tag.',
                       { UploadId: upload_id, PartNumber: number, ETag: etag });
      }
      const size = fs.statSync(part_path).size;
      if (i + 1 < parts.length && size < min_part_size) {
        throw s3_error('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.',
                       { ProposedSize: size, MinSizeAllowed: min_part_size, PartNumber: number, ETag: etag });
      }
      digests.push(Buffer.from(md5, 'hex'));
    }
    const etag = `${crypto.createHash('md5').update(Buffer.concat(digests)).digest('hex')}-${parts.length}`;
    const streams = parts.map(part => fs.createReadStream(path.join(dir, String(part.number))));
    const result = await this.putObject(new S3Object(bucket, key, concatStreams(streams), metadata), etag);
    await fs.promises.rm(dir, { recursive: true, force: true });
    return result;
  };

  proto.listObjects = async function list_objects(bucket, options) {
    const { delimiter = '', startAfter = '', prefix = '', maxKeys = Infinity } = options;
    const bucket_path = this.getBucketPath(bucket);
    // Only the directory holding the prefix can contain matching keys.
    const prefix_dir = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    const keys = [];
    for (const file of walk_files(prefix_dir ? path.posix.join(bucket_path, prefix_dir) : bucket_path)) {
      if (!file.endsWith(OBJECT_SUFFIX)) continue;
      const key = file.slice(bucket_path.length + 1, -OBJECT_SUFFIX.length);
      if (!key.startsWith(prefix)) continue;
      if (startAfter && utf8_compare(key, startAfter) <= 0) continue;
      keys.push({ key, bytes: Buffer.from(key, 'utf8') });
    }
    keys.sort((a, b) => Buffer.compare(a.bytes, b.bytes));

    // A page ends after maxKeys objects, before the next new entry: keys under one common prefix are
    // contiguous in byte order, so resuming after the last object never repeats a common prefix.
    const page = [];
    const common_prefixes = [];
    let is_truncated = false;
    for (const { key } of keys) {
      let common = undefined;
      if (delimiter) {
        const idx = key.indexOf(delimiter, prefix.length);
        if (idx !== -1) common = key.slice(0, idx + delimiter.length);
      }
      if (common !== undefined && common === common_prefixes[common_prefixes.length - 1]) continue;
      if (page.length >= maxKeys) {
        is_truncated = true;
        break;
      }
      if (common !== undefined) {
        common_prefixes.push(common);
      } else {
        page.push(key);
      }
    }
    const objects = [];
    for (const key of page) {
      try {
        objects.push(new S3Object(bucket, key, null, await this.getMetadata(bucket, key)));
      } catch (e) {
        if (e.code !== 'ENOENT') throw e;  // deleted while listing
      }
    }
    return { objects, commonPrefixes: common_prefixes, isTruncated: is_truncated };
  };
}

// Conditional requests s3rver ignores: If-Match on GET and HEAD, and x-amz-copy-source-if-match on
// CopyObject / UploadPartCopy. S3 answers 412 PreconditionFailed when the current ETag differs, which is
// what keeps a copy from mixing two versions of an object that is overwritten mid-transfer.
async function current_etag(store, bucket, key) {
  try {
    return (await store.getMetadata(bucket, key)).etag;
  } catch (e) {
    return undefined;  // no such object: s3rver's own handler answers NoSuchKey
  }
}

function etag_matches(condition, etag) {
  return condition.split(',').map(t => t.trim()).some(t => t === '*' || t === etag || `"${t}"` === etag);
}

async function check_preconditions(ctx, store) {
  const h = ctx.req.headers;
  const precondition_failed = condition =>
    s3_error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold',
             { Condition: condition }, 412);
  const raw_path = ctx.req.url.split('?')[0];
  const slash = raw_path.indexOf('/', 1);
  if ((ctx.method === 'GET' || ctx.method === 'HEAD') && h['if-match'] !== undefined && slash > 0) {
    const etag = await current_etag(store, uri_decode(raw_path.slice(1, slash)), uri_decode(raw_path.slice(slash + 1)));
    if (etag !== undefined && !etag_matches(h['if-match'], etag)) throw precondition_failed('If-Match');
  }
  if (ctx.method === 'PUT' && h['x-amz-copy-source'] !== undefined && h['x-amz-copy-source-if-match'] !== undefined) {
    let source = uri_decode(h['x-amz-copy-source'].split('?')[0]);
    if (source.startsWith('/')) source = source.slice(1);
    const i = source.indexOf('/');
    const etag = i > 0 ? await current_etag(store, source.slice(0, i), source.slice(i + 1)) : undefined;
    if (etag !== undefined && !etag_matches(h['x-amz-copy-source-if-match'], etag)) {
      throw precondition_failed('x-amz-copy-source-If-Match');
    }
  }
}

// S3 URL-decodes x-amz-copy-source completely; s3rver uses decodeURI, which leaves %23 (#), %3F (?),
// %2B (+), %3D (=), %26 (&)... encoded, so such keys were "NoSuchKey". Re-encoded with encodeURI
// (after the signature check), s3rver's decodeURI yields the key S3 would.
function normalize_copy_source(ctx) {
  const source = ctx.req.headers['x-amz-copy-source'];
  if (source === undefined) return;
  const q = source.indexOf('?');
  const path = q < 0 ? source : source.slice(0, q);
  ctx.req.headers['x-amz-copy-source'] = encodeURI(uri_decode(path)) + (q < 0 ? '' : source.slice(q));
}

// DELETE /bucket/key?uploadId=ID, which s3rver does not route.
async function abort_multipart_upload(ctx, store) {
  const raw_path = ctx.req.url.split('?')[0];
  const slash = raw_path.indexOf('/', 1);
  if (slash < 0) return false;
  const bucket = uri_decode(raw_path.slice(1, slash));
  const upload_id = ctx.query.uploadId;
  if (!(await store.getBucket(bucket))) {
    throw s3_error('NoSuchBucket', 'The specified bucket does not exist', { BucketName: bucket });
  }
  const dir = upload_dir(store, bucket, upload_id);
  require_upload(dir, upload_id);
  await fs.promises.rm(dir, { recursive: true, force: true });
  ctx.status = 204;
  return true;
}

// One line when a request arrives and one when it is answered (or cut off):
//   "request <-- PUT /bucket/key?partNumber=1&uploadId=..."
//   "request --> PUT /bucket/key?partNumber=1&uploadId=... 200"
function request_log_middleware() {
  return async (ctx, next) => {
    const line = `${ctx.method} ${ctx.req.url}`;
    console.log(`request <-- ${line}`);
    try {
      await next();
    } finally {
      const status = ctx.req.aborted ? 'aborted' : ctx.status;
      console.log(`request --> ${line} ${status}`);
    }
  };
}

// GET /bucket/key?uploadId=ID (ListParts), which s3rver does not route: every stored part in one page
// (max-parts and part-number-marker honoured), with the MD5 ETag S3 gives a part.
async function list_parts(ctx, store) {
  const raw_path = ctx.req.url.split('?')[0];
  const slash = raw_path.indexOf('/', 1);
  if (slash < 0) return false;
  const bucket = uri_decode(raw_path.slice(1, slash));
  const key = uri_decode(raw_path.slice(slash + 1));
  const upload_id = ctx.query.uploadId;
  if (!(await store.getBucket(bucket))) {
    throw s3_error('NoSuchBucket', 'The specified bucket does not exist', { BucketName: bucket });
  }
  const dir = upload_dir(store, bucket, upload_id);
  require_upload(dir, upload_id);
  const marker = Number(ctx.query['part-number-marker'] || 0);
  const max = Math.min(Number(ctx.query['max-parts'] || 1000), 1000);
  const numbers = fs.readdirSync(dir).filter(n => /^[0-9]+$/.test(n)).map(Number)
    .filter(n => n > marker).sort((a, b) => a - b);
  const page = numbers.slice(0, max);
  const esc = t => String(t).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  let xml = '<?xml version="1.0" encoding="UTF-8"?>\n<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
    `<Bucket>${esc(bucket)}</Bucket><Key>${esc(key)}</Key><UploadId>${esc(upload_id)}</UploadId>` +
    `<PartNumberMarker>${marker}</PartNumberMarker>` +
    `<NextPartNumberMarker>${page.length ? page[page.length - 1] : marker}</NextPartNumberMarker>` +
    `<MaxParts>${max}</MaxParts><IsTruncated>${numbers.length > page.length}</IsTruncated>`;
  for (const n of page) {
    const part_path = path.join(dir, String(n));
    const st = fs.statSync(part_path);
    let md5 = '';
    try {
      md5 = fs.readFileSync(`${part_path}.md5`).toString();
    } catch (e) {
      continue;  // a part still being written
    }
    xml += `<Part><PartNumber>${n}</PartNumber><LastModified>${st.mtime.toISOString()}</LastModified>` +
      `<ETag>"${md5}"</ETag><Size>${st.size}</Size></Part>`;
  }
  xml += '</ListPartsResult>';
  ctx.status = 200;
  ctx.type = 'application/xml';
  ctx.body = xml;
  return true;
}

// s3rver's ListObjectsV2 continuation tokens are DES-encrypted, and OpenSSL 3 (hence Node >= 17) has no DES:
// every truncated V2 listing failed with InternalError. Clients treat the token as opaque, so "DES" here is
// the identity; only this process is affected.
function patch_continuation_tokens() {
  for (const name of ['createCipheriv', 'createDecipheriv']) {
    const original = crypto[name];
    crypto[name] = function (algorithm, ...rest) {
      if (algorithm !== 'des') return original.call(this, algorithm, ...rest);
      return {
        update: (data, encoding) => (Buffer.isBuffer(data) ? Buffer.from(data) : Buffer.from(data, encoding || 'utf8')),
        final: () => Buffer.alloc(0),
      };
    };
  }
}

async function main() {
  let opts;
  try {
    opts = parse_args(process.argv.slice(2));
  } catch (e) {
    console.error(`s3rver_strict: ${e.message}`);
    process.exit(2);
  }
  const server = new S3rver({
    directory: opts.directory,
    address: opts.address,
    port: opts.port,
    silent: opts.silent,
    key: opts.key,
    cert: opts.cert,
    allowMismatchedSignatures: false,
  });
  // After s3rver's request logger (index 0), so refused requests are logged too, before everything else.
  patch_store(opts.minPartSize);
  for (const [id, secret] of opts.extraKeys) AWSAccount.DUMMY_ACCOUNT.createKeyPair(id, secret);
  patch_continuation_tokens();
  server.middleware.splice(1, 0, strict_middleware(opts.region, opts.maxBodyBytes, server.store));
  // s3rver's own request log loses the method and path (it cuts a fixed-width colour prefix that is
  // not there without a TTY): tests that count requests read these lines instead.
  if (!opts.silent) server.middleware.splice(1, 0, request_log_middleware());
  const { address, port } = await server.run();
  console.log('S3rver listening on %s:%d', address, port);
  // Every stored object is on disk before its response is sent, so there is nothing to flush.
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
}

main().catch(err => {
  console.error(err);
  process.exit(1);
});
