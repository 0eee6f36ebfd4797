---@meta crypto

---Hashes, HMACs, secure random bytes and constant-time comparison, built in
---(also `require "crypto"`).
---
---Every digest and MAC is returned as RAW BYTES in a Lua string, not as text:
---combine with `hex.encode` or `base64.encode` to print or send it, e.g.
---`hex.encode(crypto.hmac_sha256(secret, payload))`.
---@class cryptolib
crypto = {}

---The SHA-256 digest of `data`: 32 raw bytes.
---@param data string bytes to hash (any Lua string)
---@return string digest 32 raw bytes
---@nodiscard
function crypto.sha256(data) end

---The SHA-1 digest of `data`: 20 raw bytes.
---
---For protocols that require it, not for security.
---@param data string bytes to hash (any Lua string)
---@return string digest 20 raw bytes
---@nodiscard
function crypto.sha1(data) end

---The MD5 digest of `data`: 16 raw bytes.
---
---For checksums, not for security; S3's `Content-MD5` header is
---`base64.encode(crypto.md5(body))`.
---@param data string bytes to hash (any Lua string)
---@return string digest 16 raw bytes
---@nodiscard
function crypto.md5(data) end

---The HMAC-SHA256 of `data` under `key`: 32 raw bytes.
---
---To check a received signature, compare with `crypto.equal`, not `==`.
---@param key string secret key (any bytes, any length)
---@param data string message to authenticate
---@return string mac 32 raw bytes
---@nodiscard
function crypto.hmac_sha256(key, data) end

---The HMAC-SHA1 of `data` under `key`: 20 raw bytes.
---
---For protocols that require it (some webhook signatures).
---@param key string secret key (any bytes, any length)
---@param data string message to authenticate
---@return string mac 20 raw bytes
---@nodiscard
function crypto.hmac_sha1(key, data) end

---`n` cryptographically secure random bytes from the operating system's generator.
---
---Raises an error when `n` is not an integer from 0 to 1048576 (1 MiB).
---@param n integer number of bytes, 0 to 1048576
---@return string bytes `n` raw random bytes
---@nodiscard
function crypto.random_bytes(n) end

---Whether `a` and `b` hold the same bytes, compared in constant time: the time
---depends only on their lengths, not on where they differ.
---
---Use it to check signatures, MACs and tokens, where `==` would leak timing.
---@param a string
---@param b string
---@return boolean
---@nodiscard
function crypto.equal(a, b) end

return crypto
