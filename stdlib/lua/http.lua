---@meta http

---The script's HTTP(S) client, built in (also `require "http"`).
---
---Statuses are never errors: a 404 or a 503 comes back as a response, as with
---`fetch`. A call that gets no response raises a typed error (a table with
---`errorType` and `errorMessage`, catchable with `pcall`): `Http.Timeout`,
---`Http.ConnectError`, `Http.DnsError`, `Http.TlsError`, `Http.BodyTooLarge`,
---`Http.InvalidUrl` or `Http.TooManyRedirects`; its message names the method and
---the URL. A call still waiting at the invocation's deadline ends the
---invocation with `Runtime.Timeout`.
---
---Connections are pooled and kept alive across calls and invocations. TLS uses
---the web PKI roots compiled into lure, plus the PEM file named by
---`LURE_EXTRA_CA_CERTS`. `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`
---are honoured as curl reads them.
---@class httplib
http = {}

---What a call takes, every field optional.
---@class http.Options
---@field method string? the method, for `http.request` (default `"GET"`; any case)
---@field headers table<string, string|number|boolean>? request headers
---@field body string? the request body
---@field json any? a value sent as JSON (as `json.encode` writes it), with `content-type: application/json` unless `headers` sets one
---@field query table<string, string|number|boolean|(string|number|boolean)[]>? parameters appended to the URL, as `url.build_query` writes them
---@field timeout number? seconds for the whole call, redirects included (default 30)
---@field follow_redirects boolean? follow 301/302/303/307/308, at most 10 (default true)
---@field max_body_bytes integer? the largest response body read (default 6 MB); larger is `Http.BodyTooLarge`

---A response, whatever its status.
---@class http.Response
---@field status integer the status code (`200`, `404`, ...)
---@field headers table<string, string|string[]> header names in lower case; a repeated header's values joined with `", "`; `set-cookie` always an array
---@field body string the body (any bytes)
local Response = {}

---The body decoded as JSON, as `json.decode` does it (invalid JSON raises its error).
---
---Example: `local data = http.get(url):json()`.
---@return any
---@nodiscard
function Response:json() end

---Sends a request: `options.method` (default GET), and the other options.
---
---Example: `http.request("https://api.example.com/items/7", {method = "DELETE"})`.
---@param url string an absolute `http://` or `https://` URL
---@param options http.Options?
---@return http.Response
function http.request(url, options) end

---A GET request.
---
---Example: `local res = http.get("https://api.example.com/items", {query = {page = 2}})`.
---@param url string
---@param options http.Options?
---@return http.Response
function http.get(url, options) end

---A DELETE request.
---@param url string
---@param options http.Options?
---@return http.Response
function http.delete(url, options) end

---A POST request with `body` (pass `nil` and `options.json` to send JSON).
---
---Example: `http.post(url, nil, {json = {name = "lure"}})`.
---@param url string
---@param body string?
---@param options http.Options?
---@return http.Response
function http.post(url, body, options) end

---A PUT request with `body`.
---@param url string
---@param body string?
---@param options http.Options?
---@return http.Response
function http.put(url, body, options) end

---A PATCH request with `body`.
---@param url string
---@param body string?
---@param options http.Options?
---@return http.Response
function http.patch(url, body, options) end
