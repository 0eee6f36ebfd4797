---@meta url

---Percent-encoding (RFC 3986), query strings and URL parts, built in (also
---`require "url"`).
---
---Errors are Lua error strings, catchable with `pcall`, e.g.
---`app.lua:7: url.parse: argument 1 is not a URL: byte 2 is a space or a control character`.
---@class urllib
url = {}

---The parts of a URL, as `url.parse` returns them. Absent parts are `nil`,
---except `path`, which is always present.
---@class url.Parts
---@field scheme string? the scheme, lower-cased (`"https"`); nil for a relative URL
---@field host string? the host (after any `user:password@`); an IPv6 host without its brackets (`"::1"`)
---@field port integer? the port number, when one is given (0 to 65535)
---@field path string the path, as written (not percent-decoded); may be `""`
---@field query string? the raw text after `?`, without the `?` (see `url.parse_query`)
---@field fragment string? the raw text after `#`, without the `#`

---`text` percent-encoded (RFC 3986): the unreserved characters
---`A-Z a-z 0-9 - . _ ~` stay as they are, every other byte becomes `%XX` in
---upper case (a space becomes `%20`).
---
---Example: `url.encode("a b/c")` → `"a%20b%2Fc"`.
---@param text string
---@return string
---@nodiscard
function url.encode(text) end

---`text` percent-decoded, with `+` read as a space (as in form data and query
---strings).
---
---A `%` not followed by two hex digits is kept as it is; never raises.
---@param text string
---@return string
---@nodiscard
function url.decode(text) end

---The parameters of a query string, percent-decoded (`+` read as a space).
---
---A leading `?` is skipped. A key without `=` gives `""`. A repeated key gives
---an array of its values in order (marked with `json.array_mt`); others give a
---string, so check with `type(v) == "table"` when a key may repeat.
---
---Example: `url.parse_query("?a=1&b&a=x%20y")` → `{a = {"1", "x y"}, b = ""}`.
---@param query string
---@return table<string, string|string[]>
---@nodiscard
function url.parse_query(query) end

---A query string (without `?`) from a table of parameters.
---
---Keys are sorted. Values may be strings, numbers, booleans, or arrays of those
---(an array repeats its key); keys and values are percent-encoded as
---`url.encode` does (spaces as `%20`). `nil` and `json.null` values are skipped.
---
---Example: `url.build_query({q = "a b", tag = {"x", "y"}})` → `"q=a%20b&tag=x&tag=y"`.
---
---Raises an error when a value is anything else (a table that is not an
---array, a function, ...).
---@param params table<string, any>
---@return string
---@nodiscard
function url.build_query(params) end

---The parts of `url`: `scheme`, `host`, `port`, `path`, `query`, `fragment`.
---
---Example: `url.parse("https://example.com:8443/a?b=1#c")` →
---`{scheme = "https", host = "example.com", port = 8443, path = "/a", query = "b=1", fragment = "c"}`.
---
---Raises an error when `url` holds a space or a control character, its scheme
---is not valid, or its port is not a number from 0 to 65535.
---@param url string
---@return url.Parts
---@nodiscard
function url.parse(url) end

return url
